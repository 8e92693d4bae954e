//! Classifier throughput on typical statements.
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use lagless_sql::{classify, tables, LexOptions};

const POINT_SELECT: &str = "SELECT c FROM sbtest1 WHERE id=4242";
const JOIN_250: &str = "SELECT `o`.`id`, `o`.`created_at`, `c`.`name`, SUM(`i`.`qty` * `i`.`price`) AS `total` \
FROM `orders` `o` JOIN `customers` `c` ON `c`.`id` = `o`.`customer_id` \
LEFT JOIN `order_items` `i` ON `i`.`order_id` = `o`.`id` WHERE `o`.`status` = 'paid' GROUP BY `o`.`id`";
const INSERT: &str = "INSERT INTO `users` (`name`, `email`, `created_at`) VALUES ('Ann O''Neil', 'ann@example.com', '2024-01-02 03:04:05')";
const MULTI: &str = "SET NAMES utf8mb4; SELECT 1; UPDATE t SET a = a + 1 WHERE id = 7; SELECT * FROM t WHERE id = 7 FOR UPDATE";
const COMMENTED: &str = "/* ApplicationName=DBeaver 23.1.0 - SQLEditor <Script-12.sql> request_id=6f1c2a9e-1111-4bbb-8ccc-123456789abc user=reporting host=app-7.internal trace=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 */ SELECT `id`, `name` FROM `accounts` WHERE `id` = 17";

fn bench(c: &mut Criterion) {
    let opts = LexOptions::default();
    let mut g = c.benchmark_group("classify");
    for (name, sql) in [
        ("point_select", POINT_SELECT),
        ("join_250", JOIN_250),
        ("insert", INSERT),
        ("multi_statement", MULTI),
        ("comment_prefixed", COMMENTED),
    ] {
        eprintln!("{name}: {} bytes", sql.len());
        g.throughput(Throughput::Bytes(sql.len() as u64));
        g.bench_function(name, |b| b.iter(|| classify(black_box(sql), &opts)));
    }
    g.finish();
    let mut g = c.benchmark_group("tables");
    g.bench_function("join_250", |b| {
        b.iter(|| tables(black_box(JOIN_250), &opts).count())
    });
    g.finish();
    let long = format!(
        "INSERT INTO t (a, b) VALUES {}",
        vec!["(12345, 'some string value; with -- stuff /* */')"; 2000].join(",")
    );
    let mut g = c.benchmark_group("linear");
    g.throughput(Throughput::Bytes(long.len() as u64));
    g.bench_function("bulk_insert_100k", |b| {
        b.iter(|| classify(black_box(&long), &opts))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
