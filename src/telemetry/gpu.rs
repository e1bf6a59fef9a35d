//! GPU readings: power, energy, utilisation, memory, SM clock, temperature and throttle reasons,
//! behind the `GpuSource` trait so the sampler is tested with recorded readings. `NvmlSource`
//! reads NVIDIA's management library, loaded at run time (no driver: an ordinary error).

use std::collections::BTreeMap;
use std::time::Duration;

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::{Clock as NvmlClock, TemperatureSensor};

use super::{Kind, Reading, SampleSink};
use crate::clock::Clock;

/// One GPU at one moment. A field the GPU does not support is `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuReading {
    pub index: u32,
    pub name: String,
    pub power_w: Option<f64>,
    /// Energy used since the driver loaded, joules (Volta and newer).
    pub energy_j: Option<f64>,
    pub gpu_util_pct: Option<f64>,
    pub mem_util_pct: Option<f64>,
    pub mem_used_bytes: Option<f64>,
    pub mem_total_bytes: Option<f64>,
    pub sm_clock_mhz: Option<f64>,
    pub temperature_c: Option<f64>,
    /// NVML's clock-throttle reason bits (0: not throttled).
    pub throttle_reasons: Option<f64>,
}

impl GpuReading {
    /// The reading as telemetry series (`gpu_power_w`, `gpu_energy_joules`, ...), labelled by GPU.
    pub fn readings(&self, t_us: u64) -> Vec<Reading> {
        let labels: BTreeMap<String, String> = [
            ("gpu".to_owned(), self.index.to_string()),
            ("name".to_owned(), self.name.clone()),
        ]
        .into();
        [
            ("gpu_power_w", Kind::Gauge, self.power_w),
            ("gpu_energy_joules", Kind::Counter, self.energy_j),
            ("gpu_utilization_pct", Kind::Gauge, self.gpu_util_pct),
            ("gpu_memory_utilization_pct", Kind::Gauge, self.mem_util_pct),
            ("gpu_memory_used_bytes", Kind::Gauge, self.mem_used_bytes),
            ("gpu_memory_total_bytes", Kind::Gauge, self.mem_total_bytes),
            ("gpu_sm_clock_mhz", Kind::Gauge, self.sm_clock_mhz),
            ("gpu_temperature_c", Kind::Gauge, self.temperature_c),
            ("gpu_throttle_reasons", Kind::Gauge, self.throttle_reasons),
        ]
        .into_iter()
        .filter_map(|(name, kind, v)| {
            Some(Reading {
                t_us,
                source: "nvml".into(),
                name: name.into(),
                labels: labels.clone(),
                kind,
                value: v?,
            })
        })
        .collect()
    }
}

/// Something that can read GPUs.
pub trait GpuSource {
    fn count(&self) -> Result<u32, String>;
    fn read(&self, index: u32) -> Result<GpuReading, String>;
}

/// The NVIDIA driver's NVML.
pub struct NvmlSource {
    nvml: Nvml,
}

impl NvmlSource {
    pub fn open() -> Result<Self, String> {
        Nvml::init()
            .map(|nvml| Self { nvml })
            .map_err(|e| format!("NVML is not available ({e})"))
    }
}

impl GpuSource for NvmlSource {
    fn count(&self) -> Result<u32, String> {
        self.nvml.device_count().map_err(|e| e.to_string())
    }

    fn read(&self, index: u32) -> Result<GpuReading, String> {
        let d = self
            .nvml
            .device_by_index(index)
            .map_err(|e| format!("GPU {index}: {e}"))?;
        let util = d.utilization_rates().ok();
        let mem = d.memory_info().ok();
        Ok(GpuReading {
            index,
            name: d.name().unwrap_or_else(|_| format!("GPU {index}")),
            power_w: d.power_usage().ok().map(|mw| mw as f64 / 1000.0),
            energy_j: d
                .total_energy_consumption()
                .ok()
                .map(|mj| mj as f64 / 1000.0),
            gpu_util_pct: util.as_ref().map(|u| u.gpu as f64),
            mem_util_pct: util.as_ref().map(|u| u.memory as f64),
            mem_used_bytes: mem.as_ref().map(|m| m.used as f64),
            mem_total_bytes: mem.as_ref().map(|m| m.total as f64),
            sm_clock_mhz: d.clock_info(NvmlClock::SM).ok().map(f64::from),
            temperature_c: d.temperature(TemperatureSensor::Gpu).ok().map(f64::from),
            throttle_reasons: d.current_throttle_reasons().ok().map(|r| r.bits() as f64),
        })
    }
}

/// Reads the chosen GPUs (all when `gpus` is `None`) every `every` until the sink closes, then
/// once more.
pub fn sample_loop(
    source: impl GpuSource,
    gpus: Option<Vec<u32>>,
    every: Duration,
    clock: Clock,
    sink: SampleSink,
) {
    let indices = match gpus {
        Some(list) => list,
        None => match source.count() {
            Ok(n) => (0..n).collect(),
            Err(e) => {
                sink.notice(format!("no GPU telemetry: cannot count GPUs ({e})"));
                return;
            }
        },
    };
    if indices.is_empty() {
        sink.notice("no GPU telemetry: NVML sees no GPU".into());
        return;
    }
    let mut next = std::time::Instant::now();
    loop {
        let last = sink.closed();
        let t_us = clock.now_us();
        let mut batch = Vec::new();
        for &i in &indices {
            match source.read(i) {
                Ok(r) => batch.extend(r.readings(t_us)),
                Err(e) => sink.notice(format!("GPU telemetry: {e}")),
            }
        }
        if !sink.send_all(batch) || last {
            return;
        }
        next += every;
        // Sleep in short steps so stopping never waits a whole interval.
        while !sink.closed() {
            let now = std::time::Instant::now();
            if now >= next {
                break;
            }
            std::thread::sleep((next - now).min(Duration::from_millis(50)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_becomes_labelled_series() {
        let r = GpuReading {
            index: 1,
            name: "NVIDIA H100".into(),
            power_w: Some(300.5),
            energy_j: Some(1234.0),
            gpu_util_pct: Some(97.0),
            ..GpuReading::default()
        };
        let series = r.readings(42);
        assert_eq!(series.len(), 3, "unsupported fields are left out");
        assert_eq!(series[0].name, "gpu_power_w");
        assert_eq!(series[0].labels["gpu"], "1");
        assert_eq!(series[1].kind, Kind::Counter);
        assert!(series.iter().all(|s| s.t_us == 42 && s.source == "nvml"));
    }

    /// Readings recorded from a real GPU (two H100-like devices), replayed in order.
    struct Recorded {
        frames: std::sync::Mutex<std::collections::VecDeque<[GpuReading; 2]>>,
    }

    impl GpuSource for Recorded {
        fn count(&self) -> Result<u32, String> {
            Ok(2)
        }
        fn read(&self, index: u32) -> Result<GpuReading, String> {
            let mut frames = self.frames.lock().unwrap();
            let frame = frames.front().cloned().ok_or("no more recorded frames")?;
            if index == 1 && frames.len() > 1 {
                frames.pop_front();
            }
            Ok(frame[index as usize].clone())
        }
    }

    #[test]
    fn the_sampler_turns_recorded_readings_into_series_and_energy() {
        let frame = |k: u32| {
            let gpu = |i: u32, watts: f64| GpuReading {
                index: i,
                name: "NVIDIA H100 80GB HBM3".into(),
                power_w: Some(watts),
                // 1 kJ at start, rising by the power × 20 ms interval.
                energy_j: Some(1000.0 + watts * 0.02 * k as f64),
                gpu_util_pct: Some(90.0),
                mem_used_bytes: Some(70e9),
                mem_total_bytes: Some(80e9),
                ..GpuReading::default()
            };
            [gpu(0, 300.0), gpu(1, 200.0)]
        };
        let source = Recorded {
            frames: std::sync::Mutex::new((0..10).map(frame).collect()),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = SampleSink {
            tx,
            stop: tokio_util::sync::CancellationToken::new(),
        };
        let stopper = sink.clone();
        let clock = Clock::start();
        let thread = std::thread::spawn(move || {
            sample_loop(source, None, Duration::from_millis(20), clock, sink)
        });
        std::thread::sleep(Duration::from_millis(150));
        stopper.stop.cancel();
        thread.join().unwrap();
        drop(stopper);
        let mut readings = Vec::new();
        while let Ok(msg) = rx.recv() {
            if let super::super::Msg::Readings(batch) = msg {
                readings.extend(batch);
            }
        }
        let power: Vec<&Reading> = readings
            .iter()
            .filter(|r| r.name == "gpu_power_w")
            .collect();
        assert!(
            power.len() >= 8,
            "two GPUs, several samples: {}",
            power.len()
        );
        assert!(
            power
                .iter()
                .any(|r| r.labels["gpu"] == "1" && r.value == 200.0)
        );
        // Energy from the recorded counters: 500 W together over the window.
        let (start, end) = (
            readings.first().unwrap().t_us,
            readings.last().unwrap().t_us,
        );
        let s = super::super::summary::summarize(
            &readings,
            &[super::super::summary::Window {
                name: "all".into(),
                start_us: start,
                end_us: end,
                output_tokens: 1000,
            }],
        );
        let e = &s.energy[0];
        assert_eq!(e.gpus, 2);
        assert!(e.method.contains("gpu_energy_joules"));
        assert!(e.joules > 0.0 && e.joules_per_output_token.is_some());
        // One recorded frame per 20 ms sample: about 500 W (loose: the sampler's sleeps jitter).
        assert!((e.avg_power_w - 500.0).abs() < 125.0, "{} W", e.avg_power_w);
    }
}
