//! The model registry: trained model versions on disk, and the blue-green rule that decides
//! which one is current.
//!
//! Layout under the root folder (config `models.model_dir`, default [`DEFAULT_MODEL_DIR`]):
//!
//! ```text
//! <root>/<service>/<model>/<version>/meta.json    ModelMeta (feature-set hash, windows, metrics)
//! <root>/<service>/<model>/<version>/model.txt    the artifact (LightGBM's model string as JSON,
//!                                                 other models their parameters as JSON)
//! <root>/<service>/<model>/<version>/model.onnx   a binary artifact (the transformer's ONNX file)
//! <root>/<service>/<model>/CURRENT                the current version's id
//! ```
//!
//! A version id is derived from its content (FNV-1a of the artifact and the training window),
//! so training twice on the same data gives the same id. Writes go to a temporary file that is
//! then renamed, so a reader never sees half a file. [`ModelRegistry::offer`] applies the
//! blue-green rule ([`should_replace`]): a new version becomes current only when it scores
//! better than the current one on the same, most recent holdout window.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where models go when the configuration names no folder.
pub const DEFAULT_MODEL_DIR: &str = "data/models";
/// File name of a text artifact.
pub const TEXT_FILE: &str = "model.txt";
/// File name of an ONNX artifact.
pub const ONNX_FILE: &str = "model.onnx";

/// Scores of a model on a holdout window (rolling origins, every lead).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct HoldoutMetrics {
    /// MAE of p50.
    pub mae: f64,
    /// Mean pinball loss of p10, p50 and p90.
    pub pinball: f64,
    /// Share of actuals inside [p10, p90].
    pub coverage: f64,
    /// MAPE (%) of p50 over the non-zero actuals (0 when there is none).
    pub mape: f64,
    /// RMSE of p50.
    pub rmse: f64,
    /// Points scored.
    pub points: u64,
}

impl HoldoutMetrics {
    /// Scores `(actual, p10, p50, p90)` points; non-finite ones are skipped.
    pub fn score(points: impl IntoIterator<Item = (f64, f64, f64, f64)>) -> HoldoutMetrics {
        let (mut ae, mut pin, mut cov, mut ape, mut nape, mut se, mut n) = (0.0, 0.0, 0.0, 0.0, 0usize, 0.0, 0u64);
        let pinball = |q: f64, y: f64, f: f64| if y >= f { q * (y - f) } else { (1.0 - q) * (f - y) };
        for (y, a, b, c) in points {
            if ![y, a, b, c].iter().all(|v| v.is_finite()) {
                continue;
            }
            n += 1;
            ae += (y - b).abs();
            se += (y - b) * (y - b);
            pin += (pinball(0.1, y, a) + pinball(0.5, y, b) + pinball(0.9, y, c)) / 3.0;
            cov += f64::from(u8::from(a <= y && y <= c));
            if y != 0.0 {
                ape += ((y - b) / y).abs();
                nape += 1;
            }
        }
        if n == 0 {
            return HoldoutMetrics::default();
        }
        let nf = n as f64;
        HoldoutMetrics {
            mae: ae / nf,
            pinball: pin / nf,
            coverage: cov / nf,
            mape: if nape == 0 { 0.0 } else { 100.0 * ape / nape as f64 },
            rmse: (se / nf).sqrt(),
            points: n,
        }
    }
}

/// What the registry keeps about a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    pub service: String,
    pub model: String,
    pub version: String,
    /// Hash of the feature set the model reads (empty for models without features).
    pub feature_set_hash: String,
    pub step_seconds: i64,
    /// Training window, epoch seconds.
    pub trained_from: i64,
    pub trained_to: i64,
    /// Holdout window the metrics are from, epoch seconds.
    pub holdout_start: i64,
    pub holdout_end: i64,
    pub horizon_steps: usize,
    pub metrics: HoldoutMetrics,
    /// Anything model-specific worth keeping (feature importance, chosen hyper-parameters).
    #[serde(default)]
    pub details: serde_json::Value,
}

/// Whether `new` should replace `current`, both scored on the same holdout window: when
/// there is no current version, or the new one has a lower MAE (ties keep the current one;
/// a new version with no scored point never wins).
pub fn should_replace(new: &HoldoutMetrics, current: Option<&HoldoutMetrics>) -> bool {
    if new.points == 0 || !new.mae.is_finite() {
        return false;
    }
    match current {
        None => true,
        Some(c) => c.points == 0 || !c.mae.is_finite() || new.mae < c.mae,
    }
}

/// The outcome of [`ModelRegistry::offer`].
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// The new version's metadata (stored whether or not it was promoted).
    pub meta: ModelMeta,
    /// The version that was current before, with its score on the new holdout window.
    pub previous: Option<(String, HoldoutMetrics)>,
    /// Whether the new version is now current.
    pub promoted: bool,
}

/// Errors of the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("model registry I/O at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model registry: bad metadata at {path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("model registry: `{0}` is not a safe name")]
    BadName(String),
}

/// A folder of model versions.
#[derive(Debug, Clone)]
pub struct ModelRegistry {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn safe(name: &str) -> Result<&str, RegistryError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(name)
    } else {
        Err(RegistryError::BadName(name.into()))
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

impl ModelRegistry {
    /// A registry rooted at `root` (created on the first save).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ModelRegistry { root: root.into() }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn model_dir(&self, service: &str, model: &str) -> Result<PathBuf, RegistryError> {
        Ok(self.root.join(safe(service)?).join(safe(model)?))
    }

    /// A content-derived version id.
    pub fn version_id(artifact: &str, trained_from: i64, trained_to: i64) -> String {
        let text = format!("{trained_from}\n{trained_to}\n{artifact}");
        format!("v{:016x}", super::features::fnv1a64(text.as_bytes()))
    }

    /// Stores a version (metadata and text artifact) without making it current.
    pub fn save(&self, meta: &ModelMeta, artifact: &str) -> Result<(), RegistryError> {
        self.save_file(meta, TEXT_FILE, artifact.as_bytes())
    }

    /// Stores a version with its artifact in `file` (e.g. [`ONNX_FILE`]) without making it current.
    pub fn save_file(&self, meta: &ModelMeta, file: &str, artifact: &[u8]) -> Result<(), RegistryError> {
        let dir = self.model_dir(&meta.service, &meta.model)?.join(safe(&meta.version)?);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let json = serde_json::to_vec_pretty(meta).map_err(|source| RegistryError::Json {
            path: dir.join("meta.json"),
            source,
        })?;
        write_atomic(&dir.join(safe(file)?), artifact)?;
        write_atomic(&dir.join("meta.json"), &json)
    }

    /// Loads a stored version with its text artifact.
    pub fn load(&self, service: &str, model: &str, version: &str) -> Result<(ModelMeta, String), RegistryError> {
        let (meta, bytes) = self.load_file(service, model, version, TEXT_FILE)?;
        let path = self.model_dir(service, model)?.join(version).join(TEXT_FILE);
        let text =
            String::from_utf8(bytes).map_err(|e| io(&path)(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        Ok((meta, text))
    }

    /// Loads a stored version with its artifact from `file`.
    pub fn load_file(
        &self,
        service: &str,
        model: &str,
        version: &str,
        file: &str,
    ) -> Result<(ModelMeta, Vec<u8>), RegistryError> {
        let dir = self.model_dir(service, model)?.join(safe(version)?);
        let meta_path = dir.join("meta.json");
        let text = std::fs::read_to_string(&meta_path).map_err(io(&meta_path))?;
        let meta = serde_json::from_str(&text).map_err(|source| RegistryError::Json {
            path: meta_path.clone(),
            source,
        })?;
        let art_path = dir.join(safe(file)?);
        let artifact = std::fs::read(&art_path).map_err(io(&art_path))?;
        Ok((meta, artifact))
    }

    /// The current version's id, if any.
    pub fn current_version(&self, service: &str, model: &str) -> Result<Option<String>, RegistryError> {
        let path = self.model_dir(service, model)?.join("CURRENT");
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// The current version, if any.
    pub fn current(&self, service: &str, model: &str) -> Result<Option<(ModelMeta, String)>, RegistryError> {
        match self.current_version(service, model)? {
            Some(v) => self.load(service, model, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Makes a stored version current.
    pub fn promote(&self, service: &str, model: &str, version: &str) -> Result<(), RegistryError> {
        let dir = self.model_dir(service, model)?;
        if !dir.join(safe(version)?).join("meta.json").is_file() {
            return Err(io(&dir)(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no stored version {version}"),
            )));
        }
        write_atomic(&dir.join("CURRENT"), version.as_bytes())
    }

    /// Stores `meta`/`artifact` and promotes it if it beats the current version on the same
    /// holdout window: `score_current` scores the current version's artifact on `meta`'s
    /// holdout window (the caller knows how to run it).
    pub fn offer(
        &self,
        meta: ModelMeta,
        artifact: &str,
        score_current: impl FnOnce(&ModelMeta, &str) -> HoldoutMetrics,
    ) -> Result<Offer, RegistryError> {
        self.offer_file(meta, TEXT_FILE, artifact.as_bytes(), |m, bytes| {
            score_current(m, &String::from_utf8_lossy(bytes))
        })
    }

    /// [`offer`](Self::offer) for an artifact kept in `file` (the current version's artifact
    /// is read from the same file name).
    pub fn offer_file(
        &self,
        meta: ModelMeta,
        file: &str,
        artifact: &[u8],
        score_current: impl FnOnce(&ModelMeta, &[u8]) -> HoldoutMetrics,
    ) -> Result<Offer, RegistryError> {
        self.save_file(&meta, file, artifact)?;
        let current = match self.current_version(&meta.service, &meta.model)? {
            Some(v) => Some(self.load_file(&meta.service, &meta.model, &v, file)?),
            None => None,
        };
        let previous = match current {
            Some((cur, _)) if cur.version == meta.version => {
                return Ok(Offer {
                    meta,
                    previous: None,
                    promoted: false,
                });
            }
            Some((cur, art)) => {
                let score = score_current(&cur, &art);
                Some((cur.version, score))
            }
            None => None,
        };
        let promoted = should_replace(&meta.metrics, previous.as_ref().map(|(_, m)| m));
        if promoted {
            self.promote(&meta.service, &meta.model, &meta.version)?;
        }
        Ok(Offer {
            meta,
            previous,
            promoted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(version: &str, mae: f64) -> ModelMeta {
        ModelMeta {
            service: "api".into(),
            model: "lgbm".into(),
            version: version.into(),
            feature_set_hash: "abc".into(),
            step_seconds: 300,
            trained_from: 0,
            trained_to: 86_400,
            holdout_start: 86_400,
            holdout_end: 2 * 86_400,
            horizon_steps: 12,
            metrics: HoldoutMetrics {
                mae,
                pinball: mae / 2.0,
                coverage: 0.8,
                mape: 1.0,
                rmse: mae,
                points: 100,
            },
            details: serde_json::json!({"params": {"num_leaves": 15}}),
        }
    }

    #[test]
    fn round_trip_and_current() {
        let dir = tempfile::tempdir().unwrap();
        let reg = ModelRegistry::new(dir.path());
        assert_eq!(reg.current("api", "lgbm").unwrap(), None);
        let m = meta("v1", 2.0);
        reg.save(&m, "tree model text").unwrap();
        assert_eq!(
            reg.load("api", "lgbm", "v1").unwrap(),
            (m.clone(), "tree model text".into())
        );
        assert_eq!(
            reg.current_version("api", "lgbm").unwrap(),
            None,
            "saving does not promote"
        );
        reg.promote("api", "lgbm", "v1").unwrap();
        assert_eq!(reg.current("api", "lgbm").unwrap().unwrap().0, m);
        assert!(reg.promote("api", "lgbm", "v9").is_err());
        assert!(matches!(
            reg.save(&meta("../x", 1.0), ""),
            Err(RegistryError::BadName(_))
        ));
    }

    #[test]
    fn blue_green_promotes_only_a_better_version_on_the_same_holdout() {
        let dir = tempfile::tempdir().unwrap();
        let reg = ModelRegistry::new(dir.path());
        // first version: nothing to beat
        let first = reg
            .offer(meta("v1", 2.0), "one", |_, _| unreachable!("no current"))
            .unwrap();
        assert!(first.promoted && first.previous.is_none());
        // the current one re-scored on the new holdout: 1.5; the new one 1.8 -> stays blue
        let worse = reg
            .offer(meta("v2", 1.8), "two", |cur, art| {
                assert_eq!((cur.version.as_str(), art), ("v1", "one"));
                HoldoutMetrics {
                    mae: 1.5,
                    points: 50,
                    ..Default::default()
                }
            })
            .unwrap();
        assert!(!worse.promoted);
        assert_eq!(reg.current_version("api", "lgbm").unwrap().as_deref(), Some("v1"));
        assert!(
            reg.load("api", "lgbm", "v2").is_ok(),
            "the loser is kept for inspection"
        );
        // a better one goes green
        let better = reg
            .offer(meta("v3", 1.2), "three", |_, _| HoldoutMetrics {
                mae: 1.5,
                points: 50,
                ..Default::default()
            })
            .unwrap();
        assert!(better.promoted);
        assert_eq!(better.previous.unwrap().0, "v1");
        assert_eq!(reg.current_version("api", "lgbm").unwrap().as_deref(), Some("v3"));
        // ties and empty scores keep the current version
        assert!(!should_replace(
            &HoldoutMetrics {
                mae: 1.0,
                points: 1,
                ..Default::default()
            },
            Some(&HoldoutMetrics {
                mae: 1.0,
                points: 1,
                ..Default::default()
            })
        ));
        assert!(!should_replace(&HoldoutMetrics::default(), None));
    }

    #[test]
    fn metrics_score_known_points() {
        let m = HoldoutMetrics::score([
            (10.0, 8.0, 10.0, 12.0),
            (20.0, 8.0, 10.0, 12.0),
            (f64::NAN, 0.0, 0.0, 0.0),
        ]);
        assert_eq!(m.points, 2);
        assert!((m.mae - 5.0).abs() < 1e-12);
        assert!((m.coverage - 0.5).abs() < 1e-12);
        assert!((m.mape - 25.0).abs() < 1e-12);
        // pinball at y=10: (0.1*2 + 0 + 0.1*2)/3; at y=20: (0.1*12 + 0.5*10 + 0.9*8)/3
        assert!((m.pinball - (0.4 + 13.4) / 3.0 / 2.0).abs() < 1e-12);
        assert_eq!(
            ModelRegistry::version_id("a", 0, 1),
            ModelRegistry::version_id("a", 0, 1)
        );
        assert_ne!(
            ModelRegistry::version_id("a", 0, 1),
            ModelRegistry::version_id("b", 0, 1)
        );
    }
}
