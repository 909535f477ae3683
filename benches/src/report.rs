//! Summaries of latency histograms.

use std::time::Duration;

use hdrhistogram::Histogram;

/// A histogram of latencies in microseconds, 1 µs to 60 s, three significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts (low >= 1, high >= 2 * low, sigfig <= 5).
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Records one latency, saturating at the histogram's upper bound.
pub fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(micros.max(1));
}

/// `p50 / p99 / p99.9 / max` in microseconds.
pub fn percentiles(histogram: &Histogram<u64>) -> String {
    format!(
        "p50 {} us, p99 {} us, p99.9 {} us, max {} us",
        histogram.value_at_quantile(0.50),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.max()
    )
}
