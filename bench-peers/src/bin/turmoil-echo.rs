//! The turmoil peer of the simulator benchmark: the standard echo workload (one echo host,
//! 16 client hosts, 50 round trips of 64 bytes each) as a turmoil simulation, run for a range
//! of seeds, timed as seeds per second. `bench/sim-vs-turmoil.sh` runs it next to
//! `edgesim explore scenarios/bench-echo.toml` and prints the ratio.
//!
//! turmoil gets its fastest time model: a 1 ms tick and message latency of at most 1 ms (its
//! default is up to 100 ms, which makes every round trip cost many ticks).
//!
//! `turmoil-echo --seeds N`. (turmoil's `enable_random_order` is left off: with it the
//! clients may run before the server binds, and it is not faster.)

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PORT: u16 = 7000;
const CLIENTS: usize = 16;
const ROUND_TRIPS: usize = 50;
const MESSAGE_BYTES: usize = 64;

type Result = std::result::Result<(), Box<dyn std::error::Error>>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = args
        .iter()
        .position(|a| a == "--seeds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let start = Instant::now();
    for seed in 0..seeds {
        simulate(seed);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "turmoil seeds={seeds} secs={secs:.3} seeds_per_sec={:.1}",
        seeds as f64 / secs
    );
}

fn simulate(seed: u64) {
    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(seed)
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::ZERO)
        .max_message_latency(Duration::from_millis(1))
        .simulation_duration(Duration::from_secs(60));
    let mut sim = builder.build();
    sim.host("server", || async {
        let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
        loop {
            let (mut socket, _) = listener.accept().await?;
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    let n = match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if socket.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    for id in 0..CLIENTS {
        sim.client(format!("client{id}"), async move { client(id).await });
    }
    sim.run().expect("the echo simulation passes");
}

async fn client(id: usize) -> Result {
    let mut socket = turmoil::net::TcpStream::connect(("server", PORT)).await?;
    let message = [id as u8; MESSAGE_BYTES];
    let mut echo = [0u8; MESSAGE_BYTES];
    for _ in 0..ROUND_TRIPS {
        socket.write_all(&message).await?;
        socket.read_exact(&mut echo).await?;
        assert_eq!(echo, message, "the echo matches");
    }
    Ok(())
}
