//! The editor taxonomy: model classes grouped into a few categories editors filter on
//! (`animal`, `animal/cat`, `food & drink/coffee`, ...), read from `models/taxonomy.toml`.
//!
//! A category's score is the summed probability of its classes over the whole softmax, so a dog
//! whose probability is spread over twenty breeds is still plainly `animal/dog`. A sub-category's
//! classes count for its parent too.

use std::collections::BTreeSet;
use std::path::Path;

use imgpipe_contract::document::Category;
use serde::Deserialize;

use crate::error::RecognizerError;
use crate::scores;

/// Categories resolved to class indices, in file order.
#[derive(Debug, Clone)]
pub struct Taxonomy {
    categories: Vec<Resolved>,
}

#[derive(Debug, Clone)]
struct Resolved {
    name: String,
    classes: Vec<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[allow(dead_code)] // read for the file's own bookkeeping, not used
    version: Option<String>,
    #[serde(default)]
    category: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    classes: Vec<ClassRef>,
}

/// A class index, an inclusive index range `"a-b"`, or a label as written in the labels file.
#[derive(Deserialize)]
#[serde(untagged)]
enum ClassRef {
    Index(usize),
    Text(String),
}

/// `models/taxonomy.toml`, built in so every deployment has it without shipping the file.
const BUILT_IN: &str = include_str!("../../models/taxonomy.toml");

impl Taxonomy {
    /// The taxonomy built into the binary (`models/taxonomy.toml`, for the ImageNet labels),
    /// resolved against `labels`. Another model's labels need a taxonomy of their own
    /// (`recognizer.taxonomy`).
    pub fn built_in(labels: &[String]) -> Result<Self, RecognizerError> {
        Taxonomy::parse(BUILT_IN, labels).map_err(|reason| RecognizerError::Taxonomy {
            path: "models/taxonomy.toml (built in)".into(),
            reason: format!("{reason}; set recognizer.taxonomy to a taxonomy for this model"),
        })
    }

    /// Reads `path` and resolves it against the model's `labels` (line `i` names class `i`).
    /// Unknown labels, out-of-range indices, a sub-category without its parent, or a name used
    /// twice are errors: a taxonomy that silently drops classes would mislead editors.
    pub fn load(path: &Path, labels: &[String]) -> Result<Self, RecognizerError> {
        let error = |reason: String| RecognizerError::Taxonomy {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        Taxonomy::parse(&text, labels).map_err(error)
    }

    /// [`Taxonomy::load`] on text already read.
    pub fn parse(text: &str, labels: &[String]) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut own: Vec<(String, BTreeSet<usize>)> = Vec::with_capacity(file.category.len());
        for entry in &file.category {
            let name = entry.name.trim();
            let valid = !name.is_empty()
                && name.split('/').count() <= 2
                && name.split('/').all(|part| !part.trim().is_empty());
            if !valid {
                return Err(format!(
                    "category name {:?}: use `top` or `top/sub`",
                    entry.name
                ));
            }
            if own.iter().any(|(n, _)| n == name) {
                return Err(format!("category {name:?} is defined twice"));
            }
            let mut classes = BTreeSet::new();
            for class in &entry.classes {
                resolve(class, labels, &mut classes).map_err(|e| format!("{name}: {e}"))?;
            }
            own.push((name.to_owned(), classes));
        }
        // A parent holds its own classes and every sub-category's.
        let mut categories = Vec::with_capacity(own.len());
        for (name, classes) in &own {
            let mut all = classes.clone();
            if let Some((parent, _)) = name.split_once('/') {
                if !own.iter().any(|(n, _)| n == parent) {
                    return Err(format!("category {name:?} has no parent {parent:?}"));
                }
            } else {
                let prefix = format!("{name}/");
                for (sub, sub_classes) in &own {
                    if sub.starts_with(&prefix) {
                        all.extend(sub_classes);
                    }
                }
            }
            categories.push(Resolved {
                name: name.clone(),
                classes: all.into_iter().collect(),
            });
        }
        Ok(Taxonomy { categories })
    }

    /// How many categories there are.
    pub fn len(&self) -> usize {
        self.categories.len()
    }

    pub fn is_empty(&self) -> bool {
        self.categories.is_empty()
    }

    /// The categories scoring at least `min_score` given the model's class `probabilities`,
    /// best first (ties by name), scores rounded like tags.
    pub fn categorize(&self, probabilities: &[f32], min_score: f32) -> Vec<Category> {
        let mut found: Vec<Category> = self
            .categories
            .iter()
            .filter_map(|category| {
                let score: f32 = category
                    .classes
                    .iter()
                    .filter_map(|&i| probabilities.get(i))
                    .sum();
                let score = scores::round(score.min(1.0));
                (score > 0.0 && score >= min_score).then(|| Category {
                    name: category.name.clone(),
                    score,
                })
            })
            .collect();
        found.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.name.cmp(&b.name)));
        found
    }
}

fn resolve(class: &ClassRef, labels: &[String], out: &mut BTreeSet<usize>) -> Result<(), String> {
    let check = |index: usize| {
        if index < labels.len() {
            Ok(index)
        } else {
            Err(format!(
                "class {index} is out of range (the model has {} classes)",
                labels.len()
            ))
        }
    };
    match class {
        ClassRef::Index(index) => {
            out.insert(check(*index)?);
        }
        ClassRef::Text(text) => {
            if let Some(index) = labels.iter().position(|l| l == text) {
                out.insert(index);
            } else if let Some((first, last)) = range(text) {
                if first > last {
                    return Err(format!("range {text:?} runs backwards"));
                }
                check(last)?;
                out.extend(first..=last);
            } else {
                return Err(format!("no class is labelled {text:?}"));
            }
        }
    }
    Ok(())
}

/// `"281-285"` as `(281, 285)`.
fn range(text: &str) -> Option<(usize, usize)> {
    let (first, last) = text.split_once('-')?;
    Some((first.trim().parse().ok()?, last.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["tabby", "tiger cat", "beagle", "espresso", "cup", "daisy"]
            .map(str::to_owned)
            .to_vec()
    }

    const FILE: &str = r#"
        version = "1"
        [[category]]
        name = "animal"
        classes = []
        [[category]]
        name = "animal/cat"
        classes = ["0-1"]
        [[category]]
        name = "animal/dog"
        classes = [2]
        [[category]]
        name = "food & drink"
        classes = ["cup"]
        [[category]]
        name = "food & drink/coffee"
        classes = ["espresso"]
    "#;

    #[test]
    fn parents_sum_their_sub_categories() {
        let taxonomy = Taxonomy::parse(FILE, &labels()).expect("valid");
        assert_eq!(taxonomy.len(), 5);
        let found = taxonomy.categorize(&[0.4, 0.3, 0.1, 0.15, 0.05, 0.0], 0.0);
        let names: Vec<(&str, f32)> = found.iter().map(|c| (c.name.as_str(), c.score)).collect();
        assert_eq!(
            names,
            [
                ("animal", 0.8),
                ("animal/cat", 0.7),
                ("food & drink", 0.2),
                ("food & drink/coffee", 0.15),
                ("animal/dog", 0.1),
            ]
        );
        let kept = taxonomy.categorize(&[0.4, 0.3, 0.1, 0.15, 0.05, 0.0], 0.2);
        assert_eq!(kept.len(), 3, "{kept:?}");
        assert!(taxonomy.categorize(&[0.0; 6], 0.0).is_empty());
    }

    #[test]
    fn mistakes_are_refused() {
        for (bad, why) in [
            (
                "[[category]]\nname = \"a\"\nclasses = [\"lion\"]",
                "no class",
            ),
            ("[[category]]\nname = \"a\"\nclasses = [6]", "out of range"),
            (
                "[[category]]\nname = \"a\"\nclasses = [\"3-9\"]",
                "out of range",
            ),
            (
                "[[category]]\nname = \"a\"\nclasses = [\"3-1\"]",
                "backwards",
            ),
            ("[[category]]\nname = \"a/b\"\nclasses = [1]", "no parent"),
            ("[[category]]\nname = \"a/b/c\"\nclasses = [1]", "top/sub"),
            (
                "[[category]]\nname = \"a\"\nclasses = [1]\n[[category]]\nname = \"a\"\nclasses = [2]",
                "twice",
            ),
            (
                "[[category]]\nname = \"a\"\nclasses = [1]\ncolour = 1",
                "unknown field",
            ),
        ] {
            let err = Taxonomy::parse(bad, &labels()).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn the_shipped_taxonomy_resolves_against_the_labels() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let labels_path = root.join("models/efficientnet-lite0.labels.txt");
        let Ok(text) = std::fs::read_to_string(&labels_path) else {
            panic!(
                "{} missing: run `bash scripts/setup.sh`",
                labels_path.display()
            );
        };
        let labels: Vec<String> = text.lines().map(|l| l.trim().to_owned()).collect();
        let taxonomy =
            Taxonomy::load(&root.join("models/taxonomy.toml"), &labels).expect("taxonomy loads");
        assert_eq!(
            Taxonomy::built_in(&labels).expect("built in").len(),
            taxonomy.len()
        );
        let classes_of = |name: &str| {
            taxonomy
                .categories
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.classes.clone())
                .unwrap_or_else(|| panic!("no category {name}"))
        };
        let label = |i: usize| labels[i].as_str();
        assert_eq!(classes_of("animal"), (0..=397).collect::<Vec<_>>());
        let cats: Vec<&str> = classes_of("animal/cat").into_iter().map(label).collect();
        assert_eq!(
            cats,
            [
                "tabby",
                "tiger cat",
                "Persian cat",
                "Siamese cat",
                "Egyptian cat"
            ]
        );
        assert_eq!(classes_of("animal/dog").len(), 118);
        for name in ["espresso", "coffee mug"] {
            let index = labels.iter().position(|l| l == name).expect("label");
            assert!(classes_of("food & drink").contains(&index), "{name}");
        }
        let motorcycles: Vec<&str> = classes_of("vehicle/motorcycle")
            .into_iter()
            .map(label)
            .collect();
        assert_eq!(motorcycles, ["moped", "motor scooter"]);
    }
}
