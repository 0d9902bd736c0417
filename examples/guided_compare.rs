use edgesim::explain::guided::runs_to_failure;
fn main() {
    let windows: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    for path in std::env::args().skip(2) {
        let scenario = edgesim::scenario::load(path.as_ref()).unwrap();
        let (mut plain, mut guided) = (Vec::new(), Vec::new());
        for k in 0..windows {
            let pool: Vec<u64> = (k * 200..(k + 1) * 200).collect();
            plain.push(runs_to_failure(&scenario, &pool, 200, false).map_or(201, |r| r.0));
            guided.push(runs_to_failure(&scenario, &pool, 200, true).map_or(201, |r| r.0));
        }
        plain.sort();
        guided.sort();
        let med = |v: &Vec<usize>| v[(v.len() - 1) / 2];
        println!(
            "{path}: plain median={} max={} | guided median={} max={}",
            med(&plain),
            plain.last().unwrap(),
            med(&guided),
            guided.last().unwrap()
        );
    }
}
