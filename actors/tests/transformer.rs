//! The transformer served by ONNX Runtime: Rust outputs against the Python reference on the
//! shipped fixtures, determinism, batching, the layout check, the ensemble member, and a
//! retrained ONNX version through the registry (blue-green). Needs the runtime library:
//! `ORT_DYLIB_PATH`, or the `onnxruntime` wheel where `python3` finds it (scripts/test installs it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actors::forecast::transformer::layout::{self, Prepared};
use actors::forecast::transformer::{ModelChoice, OnnxModel, Transformer, TransformerError, runtime};
use actors::forecast::{Ensemble, Forecaster, Job, by_name};
use serde_json::Value;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/transformer")
        .join(rel)
}

/// Points the runtime at the library (ORT_DYLIB_PATH, else the wheel python3 sees) and loads it.
fn runtime() {
    let path = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from).or_else(|| {
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import onnxruntime, os, glob; print(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), 'capi', 'libonnxruntime.so*'))[0])",
            ])
            .output()
            .ok()?;
        out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    });
    let path = path.expect(
        "these tests need ONNX Runtime: set ORT_DYLIB_PATH or pip install onnxruntime==1.31.1 (scripts/test does)",
    );
    runtime::set_runtime_path(path);
    runtime::environment().expect("ONNX Runtime loads");
}

fn fixtures() -> Vec<Value> {
    let text = std::fs::read_to_string(data("fixtures.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["layout"], layout::LAYOUT);
    v["cases"].as_array().unwrap().clone()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN))
        .collect()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

/// The case's history as a regular series ending at 1_700_000_000.
fn series(case: &Value) -> (Vec<i64>, Vec<f64>, i64) {
    let step = case["step_s"].as_i64().unwrap();
    let y = floats(&case["history"]);
    let t: Vec<i64> = (0..y.len() as i64)
        .map(|i| 1_700_000_000 - (y.len() as i64 - 1 - i) * step)
        .collect();
    (t, y, step)
}

#[test]
fn input_preparation_matches_the_python_reference() {
    for case in fixtures() {
        let (_, y, step) = series(&case);
        let p = layout::prepare(&y, step).unwrap();
        let name = case["name"].as_str().unwrap();
        assert!(close(p.loc, case["loc"].as_f64().unwrap(), 1e-12), "{name}: loc");
        assert!(close(p.scale, case["scale"].as_f64().unwrap(), 1e-12), "{name}: scale");
        assert_eq!(p.step, case["step_feature"].as_f64().unwrap() as f32, "{name}: step");
        for (i, (a, b)) in p.z.iter().zip(floats(&case["context"])).enumerate() {
            assert!(close(f64::from(*a), b, 1e-6), "{name}: z[{i}] {a} vs {b}");
        }
    }
}

#[test]
fn rust_outputs_equal_the_python_reference_outputs() {
    runtime();
    let model = Transformer::default();
    for case in fixtures() {
        let (t, y, step) = series(&case);
        let name = case["name"].as_str().unwrap();
        let want = [floats(&case["p10"]), floats(&case["p50"]), floats(&case["p90"])];
        let h = want[1].len();
        assert_eq!(h, layout::reach(step));
        // the raw model output, before the forecaster's clamping at zero
        let p = layout::prepare(&y, step).unwrap();
        let q = OnnxModel::shipped().unwrap().predict(&[&p]).unwrap();
        let got = layout::to_leads(&q, &p, step, h);
        for (g, w) in got.iter().zip(&want) {
            for k in 0..h {
                assert!(close(g[k], w[k], 1e-4), "{name} lead {}: {} vs {}", k + 1, g[k], w[k]);
            }
        }
        // and through the model interface: the same values (clamped at zero, ordered)
        let path = model.forecast(&t, &y, step, h).unwrap();
        for (got, want) in path.p50.iter().zip(&want[1]) {
            assert!(close(*got, want.max(0.0), 1e-4), "{name}: forecast p50 {got} vs {want}");
        }
    }
}

#[test]
fn same_inputs_give_bit_identical_outputs_alone_or_batched() {
    runtime();
    let cases = fixtures();
    let windows: Vec<Prepared> = cases
        .iter()
        .map(|c| {
            let (_, y, step) = series(c);
            layout::prepare(&y, step).unwrap()
        })
        .collect();
    let refs: Vec<&Prepared> = windows.iter().collect();
    let m = OnnxModel::shipped().unwrap();
    let a = m.predict(&refs).unwrap();
    let b = m.predict(&refs).unwrap();
    assert_eq!(
        a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    let n = 3 * layout::HORIZON;
    for (i, w) in refs.iter().enumerate() {
        let alone = m.predict(&[w]).unwrap();
        let max = alone
            .iter()
            .zip(&a[i * n..(i + 1) * n])
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(max <= 1e-5, "window {i}: alone vs batched differ by {max}");
    }
    // the model interface: twice the same forecast, bit for bit, and the batch API agrees
    let (t, y, step) = series(&cases[0]);
    let model = by_name("transformer").unwrap();
    let one = model.forecast(&t, &y, step, 6).unwrap();
    assert_eq!(
        actors::forecast::transformer::unavailable_note([&one]),
        None,
        "{:?}",
        one.notes
    );
    assert_eq!(one, model.forecast(&t, &y, step, 6).unwrap());
    let jobs: Vec<Job> = cases
        .iter()
        .map(|_| Job {
            t: &t,
            y: &y,
            step_s: step,
            horizon: 6,
        })
        .collect();
    for r in model.forecast_batch(&jobs) {
        let r = r.unwrap();
        for k in 0..6 {
            assert!((r.p50[k] - one.p50[k]).abs() <= 1e-5 * one.p50[k].abs().max(1.0));
        }
    }
}

#[test]
fn a_model_declaring_another_layout_is_refused() {
    runtime();
    let bytes = std::fs::read(data("fixtures/other_layout.onnx")).unwrap();
    match OnnxModel::load(&bytes, "test") {
        Err(TransformerError::Layout { declared, expected }) => {
            assert!(declared.contains("pscaler-patch-v0") && expected.contains(layout::LAYOUT));
        }
        other => panic!("expected a layout refusal, got {other:?}"),
    }
    // the same tiny model with the right declaration loads
    let ok = std::fs::read(data("fixtures/last_value.onnx")).unwrap();
    let m = OnnxModel::load(&ok, "test").unwrap();
    // and the same bytes share one session
    assert!(Arc::ptr_eq(&m, &OnnxModel::load(&ok, "again").unwrap()));
}

#[test]
fn the_ensemble_weights_the_transformer_by_its_replayed_accuracy() {
    runtime();
    let case = &fixtures()[0];
    let (_, _, step) = series(case);
    // a week of a noisy daily cycle
    let n = 7 * 288;
    let t: Vec<i64> = (0..n as i64).map(|i| 1_700_000_000 + i * step).collect();
    let y: Vec<f64> = (0..n)
        .map(|i| 100.0 + 30.0 * (i as f64 / 288.0 * std::f64::consts::TAU).sin() + ((i * 7919) % 13) as f64)
        .collect();
    let with = Ensemble::default().forecast(&t, &y, step, 3).unwrap();
    let without = Ensemble::simple().forecast(&t, &y, step, 3).unwrap();
    let notes = with.notes.join("; ");
    assert!(notes.contains("Transformer") || !notes.contains("left out"), "{notes}");
    assert!(!without.notes.join(" ").contains("Transformer"));
    assert_ne!(with.p50, without.p50, "the member changes the forecast");
    // a member that forecasts the last value only is weighted like the `Last` component
    let tiny = OnnxModel::load(&std::fs::read(data("fixtures/last_value.onnx")).unwrap(), "test").unwrap();
    let last = Ensemble {
        transformer: Some(ModelChoice::Loaded(tiny)),
        ..Ensemble::default()
    };
    assert!(
        last.forecast(&t, &y, step, 3)
            .unwrap()
            .p50
            .iter()
            .all(|v| v.is_finite())
    );
}

#[cfg(feature = "ml")]
#[test]
fn a_retrained_onnx_version_is_promoted_blue_green() {
    use actors::forecast::registry::{ModelRegistry, ONNX_FILE};
    use actors::forecast::transformer::training::{TRANSFORMER, offer_onnx};
    use actors::forecast::transformer::versions;
    runtime();
    let dir = tempfile::tempdir().unwrap();
    let reg = ModelRegistry::new(dir.path());
    let n = 6 * 288;
    let t: Vec<i64> = (0..n as i64).map(|i| 1_700_000_000 + i * 300).collect();
    let y: Vec<f64> = (0..n)
        .map(|i| 100.0 + 30.0 * (i as f64 / 288.0 * std::f64::consts::TAU).sin() + ((i * 7919) % 13) as f64)
        .collect();
    let shipped = std::fs::read(data("model.onnx")).unwrap();
    let baseline = std::fs::read(data("fixtures/last_value.onnx")).unwrap();
    let first = offer_onnx(&reg, "api", &baseline, &t, &y, 300, 3, 1.0).unwrap();
    assert!(first.event.promoted && first.event.previous_version.is_none());
    assert_eq!(first.event.model, TRANSFORMER);
    let (v, _) = versions::current(&reg, "api").unwrap().unwrap();
    assert_eq!(v, versions::version_of(&baseline));
    // the retrained file, compared on the same (latest) holdout window
    let next = offer_onnx(&reg, "api", &shipped, &t, &y, 300, 3, 1.0).unwrap();
    assert_eq!(next.event.previous_version.as_deref(), Some(v.as_str()));
    let prev = next.event.previous_mae.unwrap();
    let cur = reg.current_version("api", TRANSFORMER).unwrap().unwrap();
    assert_eq!(next.event.promoted, next.event.mae < prev);
    assert_eq!(
        cur,
        if next.event.promoted {
            versions::version_of(&shipped)
        } else {
            v.clone()
        }
    );
    assert!(
        reg.load_file("api", TRANSFORMER, &versions::version_of(&shipped), ONNX_FILE)
            .is_ok()
    );
    // the same file again: nothing to promote; a file of another layout: refused, nothing stored
    let again = offer_onnx(&reg, "api", &shipped, &t, &y, 300, 3, 1.0).unwrap();
    assert!(!again.event.promoted);
    let other = std::fs::read(data("fixtures/other_layout.onnx")).unwrap();
    let err = offer_onnx(&reg, "api", &other, &t, &y, 300, 3, 1.0).unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    assert!(
        reg.load_file("api", TRANSFORMER, &versions::version_of(&other), ONNX_FILE)
            .is_err()
    );
}
