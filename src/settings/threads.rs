//! `--threads`: how many threads send requests and read responses, and the one rule behind
//! `auto` (the default), which picks from the plan: one thread unless the plan's load would keep
//! one thread too busy, or starts more streams together than one thread reads in time.
//!
//! The costs are this project's own measurements (benches/RESULTS.md, a 2-core VM): one
//! thread spends about 130 µs of CPU per request plus 11 µs per streamed chunk, and a closed
//! loop of 1,000 lanes starting together added 11.6 ms to TTFT p50 on one thread against 0.44
//! ms on two. A second worker costs about 30% more CPU per request (hand-offs between the
//! workers on every chunk), so `auto` adds threads only when the plan needs them.

use std::fmt;

use crate::plan::{Phase, Plan, Shard};

/// The `--threads` flag: a number of threads, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// Chosen from the plan by [`choose`]; commands without a plan (mock, calibrate) take one.
    Auto,
    Fixed(u16),
}

impl Threads {
    /// The flag's value: `auto`, or a count from 1 to 512.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        match s.parse::<u16>() {
            Ok(n) if (1..=512).contains(&n) => Ok(Self::Fixed(n)),
            _ => Err(format!(
                "{s:?} is not a thread count: give auto or a number from 1 to 512"
            )),
        }
    }

    /// The count before a plan is known: the fixed one, or 1 for `auto`.
    pub fn before_plan(self) -> usize {
        match self {
            Self::Auto => 1,
            Self::Fixed(n) => usize::from(n),
        }
    }
}

impl fmt::Display for Threads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// CPU time one request thread spends per request, besides its chunks.
const REQUEST_CPU_S: f64 = 130e-6;
/// CPU time one request thread spends per streamed chunk.
const CHUNK_CPU_S: f64 = 11e-6;
/// Output tokens assumed per request when the plan does not send `max_tokens`.
const ASSUMED_TOKENS: u32 = 256;
/// The share of one thread's time the plan may take before `auto` adds threads: below the
/// 60% at which a run warns that its request thread was busy.
const BUSY_TARGET: f64 = 0.5;
/// Closed-loop lanes from which streams start in bursts large enough
/// that one thread reads the last of a burst late.
const BURST_STREAMS: u32 = 500;
/// The most threads `auto` picks: past a few workers their hand-offs cost more than they save.
const MOST_THREADS: usize = 8;

/// What `auto` picked, and why (said on stderr when it is more than one).
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub threads: usize,
    pub why: String,
}

/// The threads for this process's share of `plan` (`shard`: its share of a sharded run) on a
/// machine with `cores` cores.
pub fn choose(plan: &Plan, shard: Option<Shard>, cores: usize) -> Choice {
    let processes = shard.map_or(1, |s| s.count.max(1));
    let cost = request_cpu_s(plan);
    let rate = plan.phases.iter().map(peak_rate).fold(0.0, f64::max) / f64::from(processes);
    let busy = rate * cost;
    let streams = plan.phases.iter().map(burst_streams).max().unwrap_or(0) / processes;
    let (wanted, why) = if busy > BUSY_TARGET {
        (
            (busy / BUSY_TARGET).ceil() as usize,
            format!(
                "{rate:.0} requests/s at about {:.2} ms of CPU each would keep one thread {:.0}% busy",
                cost * 1e3,
                busy * 100.0
            ),
        )
    } else if streams >= BURST_STREAMS {
        (2, format!("{streams} streams may start together"))
    } else {
        (1, "one thread keeps up with this plan".to_string())
    };
    let threads = wanted.max(1).min(cores.clamp(1, MOST_THREADS));
    let why = match threads < wanted {
        true if cores < MOST_THREADS => format!("{why}; this machine has {cores} core(s)"),
        true => format!("{why}; auto takes at most {MOST_THREADS}"),
        false => why,
    };
    Choice { threads, why }
}

/// The CPU time one thread spends on one of the plan's requests.
fn request_cpu_s(plan: &Plan) -> f64 {
    let chunks = if plan.request.stream {
        plan.request.max_tokens.unwrap_or(ASSUMED_TOKENS)
    } else {
        1
    };
    REQUEST_CPU_S + CHUNK_CPU_S * f64::from(chunks)
}

/// The highest arrival rate a phase offers (requests per second): its rate or the top of its
/// rate ramp, or a replayed trace's busiest second. 0 for a closed loop, and for a sweep step,
/// whose rate is a share of the saturation phase's throughput (a closed loop, counted there).
fn peak_rate(phase: &Phase) -> f64 {
    if let Some(replay) = &phase.replay {
        return busiest_second(&replay.offsets) as f64;
    }
    match (&phase.ramp.rate, phase.rate) {
        (Some(shape), _) => shape.max(),
        (None, Some(rate)) => rate,
        (None, None) => 0.0,
    }
}

/// The most arrivals within any one second of a replay (offsets sorted ascending).
fn busiest_second(offsets: &[std::time::Duration]) -> usize {
    let mut most = 0;
    let mut first = 0;
    for (i, at) in offsets.iter().enumerate() {
        while *at - offsets[first] >= std::time::Duration::from_secs(1) {
            first += 1;
        }
        most = most.max(i + 1 - first);
    }
    most
}

/// Streams a phase starts at once: a closed loop's lanes all start together (and keep
/// finishing in waves). An open loop's arrivals are spread by its schedule.
fn burst_streams(phase: &Phase) -> u32 {
    match phase.is_open_loop() {
        true => 0,
        false => phase.concurrency.unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan of a script with these `request` fields and phases.
    fn plan(request: &str, phases: &str) -> Plan {
        crate::script::load_source(
            std::path::Path::new("t.rhai"),
            &format!("request(#{{ prompt: \"hi\", {request} }}); {phases}"),
            &crate::config::Configs::new("/nonexistent"),
            &Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn the_flag_takes_auto_or_a_count() {
        assert_eq!(Threads::parse("auto"), Ok(Threads::Auto));
        assert_eq!(Threads::parse("AUTO"), Ok(Threads::Auto));
        assert_eq!(Threads::parse("3"), Ok(Threads::Fixed(3)));
        for bad in ["0", "513", "-1", "two", ""] {
            let e = Threads::parse(bad).unwrap_err();
            assert!(e.contains("auto or a number from 1 to 512"), "{e}");
        }
        assert_eq!(Threads::Auto.before_plan(), 1);
        assert_eq!(Threads::Fixed(4).before_plan(), 4);
    }

    #[test]
    fn the_six_scale_set_ups_get_what_benches_results_says() {
        // rate500, rate150, rate2000, open1000 (benches/scale.rs): one thread keeps up.
        for (rps, tokens) in [(500, 64), (150, 128), (2000, 4), (600, 32)] {
            let p = plan(
                &format!("max_tokens: {tokens}"),
                &format!("phase(\"p\", #{{ requests: 10, rps: {rps}, arrival: \"poisson\" }});"),
            );
            let c = choose(&p, None, 2);
            assert_eq!(c.threads, 1, "{rps}/s × {tokens}: {}", c.why);
        }
        // streams1000, streams5000, streams10000: lanes that start together.
        for lanes in [1000, 5000, 10_000] {
            let p = plan(
                "max_tokens: 16",
                &format!("phase(\"p\", #{{ requests: 10, concurrency: {lanes} }});"),
            );
            let c = choose(&p, None, 2);
            assert_eq!(c.threads, 2, "{}", c.why);
            assert!(c.why.contains("streams may start together"), "{}", c.why);
        }
    }

    #[test]
    fn a_busy_plan_gets_threads_up_to_the_cores() {
        // 2,000/s of 256-token streams (no max_tokens sent): ~2.95 ms of CPU a request, about
        // twelve threads' worth at half load each.
        let busy = plan("", "phase(\"p\", #{ requests: 10, rps: 2000 });");
        let c = choose(&busy, None, 64);
        assert_eq!(c.threads, MOST_THREADS, "{}", c.why);
        assert!(c.why.contains("2000 requests/s"), "{}", c.why);
        assert!(c.why.contains("at most 8"), "{}", c.why);
        let two = choose(&busy, None, 2);
        assert_eq!(two.threads, 2);
        assert!(two.why.contains("2 core(s)"), "{}", two.why);
        assert_eq!(choose(&busy, None, 1).threads, 1);
        // Not streamed: one chunk a request.
        let whole = plan(
            "stream: false",
            "phase(\"p\", #{ requests: 10, rps: 2000 });",
        );
        assert_eq!(choose(&whole, None, 64).threads, 1);
    }

    #[test]
    fn a_shard_chooses_for_its_own_share() {
        let lanes = plan(
            "max_tokens: 32",
            "phase(\"p\", #{ requests: 10, concurrency: 1000 });",
        );
        assert_eq!(choose(&lanes, None, 2).threads, 2);
        assert_eq!(choose(&lanes, Shard::new(0, 4), 2).threads, 1);
        // 4,000/s of 64-token streams: 0.834 ms each, 3.3 threads' worth; a quarter of it 0.83.
        let rate = plan(
            "max_tokens: 64",
            "phase(\"p\", #{ requests: 10, rps: 4000 });",
        );
        assert_eq!(choose(&rate, None, 64).threads, 7);
        assert_eq!(choose(&rate, Shard::new(1, 4), 64).threads, 2);
    }

    #[test]
    fn ramps_count_their_peak() {
        let rate = plan(
            "max_tokens: 64",
            "phase(\"p\", #{ duration: 10, rps: ramp(1, 5000) });",
        );
        assert!(choose(&rate, None, 4).threads > 1);
        // An open loop's concurrency cap is no burst: its arrivals are spread out.
        let capped = plan(
            "max_tokens: 64",
            "phase(\"p\", #{ duration: 10, rps: 100, concurrency: ramp(10, 800) });",
        );
        assert_eq!(choose(&capped, None, 4).threads, 1);
        // Closed-loop levels (ramps::users) are phases: the largest counts.
        let users = plan(
            "max_tokens: 64",
            "phase(\"a\", #{ duration: 1, concurrency: 10 }); phase(\"b\", #{ duration: 1, concurrency: 800 });",
        );
        assert_eq!(choose(&users, None, 4).threads, 2);
    }

    #[test]
    fn busiest_second_counts_a_sliding_window() {
        let ms = |v: &[u64]| -> Vec<std::time::Duration> {
            v.iter()
                .map(|m| std::time::Duration::from_millis(*m))
                .collect()
        };
        assert_eq!(busiest_second(&[]), 0);
        assert_eq!(busiest_second(&ms(&[0, 500, 999, 1000, 1500])), 3);
        assert_eq!(busiest_second(&ms(&[0, 2000, 4000])), 1);
    }
}
