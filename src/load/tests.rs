//! Unit tests of the load generator's pure parts: configuration checks and `/proc` parsing.

use super::*;

fn config(addr: &str) -> LoadConfig {
    LoadConfig {
        addr: addr.parse().unwrap(),
        conns: 4,
        size: 64,
        secs: 0.5,
        pipeline: 1,
        client_threads: 2,
        server_pid: None,
    }
}

#[test]
fn only_loopback_targets_are_accepted() {
    assert_eq!(config("127.0.0.1:9").validate(), Ok(()));
    assert_eq!(config("127.1.2.3:9").validate(), Ok(()));
    assert_eq!(config("[::1]:9").validate(), Ok(()));
    for refused in [
        "10.0.0.1:9",
        "0.0.0.0:9",
        "192.168.1.1:9",
        "[::ffff:127.0.0.1]:9",
    ] {
        let error = config(refused).validate().unwrap_err();
        assert!(error.0.contains("only loopback"), "{refused}: {error}");
    }
}

#[test]
fn zero_and_unbounded_values_are_refused() {
    let mut zero_conns = config("127.0.0.1:9");
    zero_conns.conns = 0;
    assert!(zero_conns.validate().unwrap_err().0.contains("--conns"));
    let mut huge_pipeline = config("127.0.0.1:9");
    huge_pipeline.pipeline = PIPELINE_MAX + 1;
    assert!(huge_pipeline
        .validate()
        .unwrap_err()
        .0
        .contains("--pipeline"));
    let mut nan_secs = config("127.0.0.1:9");
    nan_secs.secs = f64::NAN;
    assert!(nan_secs.validate().unwrap_err().0.contains("--secs"));
    let mut no_port = config("127.0.0.1:0");
    no_port.addr.set_port(0);
    assert!(no_port.validate().is_err());
}

#[test]
fn stat_cpu_is_read_after_the_last_parenthesis() {
    // A command name with spaces and a parenthesis, then utime=250 and stime=50 ticks.
    let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 0 0";
    assert_eq!(parse_stat_cpu(stat), Some(Duration::from_secs(3)));
    assert_eq!(parse_stat_cpu("garbage"), None);
    assert!(process_cpu(std::process::id()).is_some());
}
