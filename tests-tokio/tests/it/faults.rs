//! The faults of [`crate::support::faults`] reach tokio: over a few seeds the tokio
//! server's own calls get `EINTR` from `epoll_wait`, reads and writes that take part of
//! what was offered, and writes that fail with `WouldBlock`, and it still serves every byte
//! (tests/it/echo.rs). Without this, a passing run could be one the faults missed.

use crate::support::{faults, sim_addr, workload};
use edgesim::harness::{Harness, SimSpec, Verdict};
use edgesim_tokio_tests::{echo, on_current_thread};

/// Whether a trace line is a short transfer: `call(fd, offered) = taken` with less taken
/// (but something).
fn partial(line: &str) -> bool {
    let Some((call, result)) = line.split_once(") = ") else {
        return false;
    };
    let offered = call.rsplit(", ").next().and_then(|n| n.parse::<u64>().ok());
    let taken = result.trim().parse::<u64>().ok();
    matches!((offered, taken), (Some(o), Some(t)) if 0 < t && t < o)
}

/// The tokio server's reads that returned part of what it asked for, over seeds 0..20.
fn partial_reads(sim: fn(&mut SimSpec)) -> usize {
    let harness = Harness::serving_at(sim_addr(), |addr| on_current_thread(echo(addr)))
        .clients(workload())
        .sim(sim);
    (0..20)
        .flat_map(|seed| harness.run(seed).trace)
        .filter(|l| l.contains(" t1 ") && l.contains(" read(") && partial(l))
        .count()
}

/// A read cut short by the fault looks like one that found less queued, so the fault
/// shows as more partial reads than the same seeds make with it off.
#[test]
fn short_reads_reach_the_tokio_server() {
    let with = partial_reads(faults);
    let without = partial_reads(|sim| {
        faults(sim);
        sim.faults.kernel.short_read = 0.0;
    });
    eprintln!("tokio server, 20 seeds: {with} partial reads with short reads, {without} without");
    assert!(
        with > without,
        "{with} partial reads with the fault, {without} without"
    );
}

#[test]
fn eintr_short_writes_and_would_block_reach_the_tokio_server() {
    let harness = Harness::serving_at(sim_addr(), |addr| on_current_thread(echo(addr)))
        .clients(workload())
        .sim(faults);
    let (mut eintr, mut short, mut would_block) = (0, 0, 0);
    for seed in 0..20 {
        let result = harness.run(seed);
        assert_eq!(result.verdict, Verdict::Pass, "{result:#?}");
        // Thread t1 is the server (the trace's legend says so).
        for line in result.trace.iter().filter(|l| l.contains(" t1 ")) {
            eintr += usize::from(line.contains("epoll_wait(") && line.ends_with("= EINTR"));
            short += usize::from(line.contains(" write(") && partial(line));
            would_block += usize::from(line.contains(" write(") && line.ends_with("= EAGAIN"));
        }
    }
    eprintln!(
        "tokio server, 20 seeds: {eintr} EINTR, {short} short writes, {would_block} EAGAIN writes"
    );
    assert!(eintr > 0 && short > 0 && would_block > 0);
}
