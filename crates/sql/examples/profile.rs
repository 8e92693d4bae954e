//! Tight loop for profilers: `cargo run --release -p lagless-sql --example profile -- point 10000000`.
use lagless_sql::{classify, LexOptions};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "point".into());
    let n: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let sql = match which.as_str() {
        "point" => "SELECT c FROM sbtest1 WHERE id=4242",
        "insert" => "INSERT INTO `users` (`name`, `email`, `created_at`) VALUES ('Ann O''Neil', 'ann@example.com', '2024-01-02 03:04:05')",
        "join" => "SELECT `o`.`id`, `o`.`created_at`, `c`.`name`, SUM(`i`.`qty` * `i`.`price`) AS `total` FROM `orders` `o` JOIN `customers` `c` ON `c`.`id` = `o`.`customer_id` LEFT JOIN `order_items` `i` ON `i`.`order_id` = `o`.`id` WHERE `o`.`status` = 'paid' GROUP BY `o`.`id`",
        _ => "SELECT 1",
    };
    let opts = LexOptions::default();
    let t = Instant::now();
    let mut acc = 0u32;
    for _ in 0..n {
        acc = acc.wrapping_add(black_box(classify(black_box(sql), &opts)).statement_count);
    }
    let el = t.elapsed();
    println!(
        "{which}: {:.1} ns/iter ({acc})",
        el.as_nanos() as f64 / n as f64
    );
}
