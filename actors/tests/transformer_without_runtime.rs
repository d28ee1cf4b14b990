//! Without a loadable ONNX Runtime the transformer and the ensemble still forecast (the simple
//! ensemble's forecast), say why in their notes, and nothing panics. Its own process: the
//! runtime path is set to a file that does not exist before anything loads.

use actors::forecast::transformer::{self, runtime};
use actors::forecast::{Ensemble, Forecaster, Job, by_name};

fn series() -> (Vec<i64>, Vec<f64>) {
    let n = 5 * 288;
    let t = (0..n as i64).map(|i| 1_700_000_000 + i * 300).collect();
    let y = (0..n)
        .map(|i| 50.0 + 20.0 * (i as f64 / 288.0 * std::f64::consts::TAU).sin() + (i % 5) as f64)
        .collect();
    (t, y)
}

#[test]
fn a_missing_runtime_degrades_to_the_other_models_with_the_reason_in_the_notes() {
    runtime::set_runtime_path("/nonexistent/libonnxruntime.so.1.31.1");
    let err = runtime::environment().unwrap_err();
    assert!(err.to_string().contains("/nonexistent"), "{err}");
    let (t, y) = series();
    let simple = Ensemble::simple().forecast(&t, &y, 300, 3).unwrap();

    let tf = by_name("transformer").unwrap().forecast(&t, &y, 300, 3).unwrap();
    assert!(
        tf.notes
            .iter()
            .any(|n| n.contains("transformer unavailable") && n.contains("/nonexistent")),
        "{:?}",
        tf.notes
    );
    assert_eq!((&tf.p10, &tf.p50, &tf.p90), (&simple.p10, &simple.p50, &simple.p90));
    // what backtest and bench print once
    let note = transformer::unavailable_note([&tf, &simple]).unwrap();
    assert!(note.contains("/nonexistent"));
    assert_eq!(transformer::unavailable_note([&simple]), None);

    let ens = Ensemble::default().forecast(&t, &y, 300, 3).unwrap();
    assert!(
        ens.notes
            .iter()
            .any(|n| n.contains("transformer member left out") && n.contains("/nonexistent")),
        "{:?}",
        ens.notes
    );
    assert_eq!(ens.p50, simple.p50, "without its member the ensemble is the simple one");

    let jobs = [Job {
        t: &t,
        y: &y,
        step_s: 300,
        horizon: 3,
    }; 3];
    for r in by_name("transformer").unwrap().forecast_batch(&jobs) {
        assert_eq!(r.unwrap().p50, simple.p50);
    }
}
