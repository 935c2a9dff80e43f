//! Micro-batching with the real model: concurrent callers share model runs, each gets exactly its
//! own result (the same as alone), and a bad image in a batch fails only itself.

mod common;

use std::sync::Barrier;

use common::{config, labels, photo, recognize};
use imgpipe_contract::config::RecognizerConfig;
use imgpipe_recognizer::{Classifier, Recognition};

fn assert_same(name: &str, alone: &Recognition, batched: &Recognition) {
    assert_eq!(labels(&alone.tags), labels(&batched.tags), "{name}");
    for (a, b) in alone.tags.iter().zip(&batched.tags) {
        assert!(
            (a.score - b.score).abs() <= 1e-4 + f32::EPSILON,
            "{name}: {a:?} vs {b:?}"
        );
    }
    let names = |r: &Recognition| {
        r.categories
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(alone), names(batched), "{name}");
}

#[test]
fn concurrent_callers_get_their_own_results_and_a_bad_image_fails_alone() {
    let mut truncated = photo("chelsea.jpg");
    truncated.truncate(truncated.len() / 2);
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("chelsea.jpg", photo("chelsea.jpg")),
        ("coffee.jpg", photo("coffee.jpg")),
        ("not an image", b"plain text, not a picture".to_vec()),
        ("china.jpg", photo("china.jpg")),
        ("truncated chelsea.jpg", truncated),
        ("flower.jpg", photo("flower.jpg")),
        ("motorcycle_left.png", photo("motorcycle_left.png")),
        ("rocket.jpg", photo("rocket.jpg")),
    ];
    // Alone first: batch size 1, one caller at a time.
    let alone = Classifier::load(&RecognizerConfig {
        batch_size: 1,
        ..config()
    })
    .expect("load");
    let expected: Vec<_> = inputs
        .iter()
        .map(|(_, bytes)| recognize(&alone, bytes, 5))
        .collect();

    // Then all at once, into batches of up to 4 with a generous wait so they really share.
    let batched = Classifier::load(&RecognizerConfig {
        batch_size: 4,
        batch_wait_ms: 2_000,
        ..config()
    })
    .expect("load");
    let start = Barrier::new(inputs.len());
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .iter()
            .map(|(_, bytes)| {
                let (batched, start) = (&batched, &start);
                s.spawn(move || {
                    start.wait();
                    recognize(batched, bytes, 5)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("caller thread"))
            .collect()
    });

    for (((name, _), alone), batched) in inputs.iter().zip(&expected).zip(&results) {
        match (alone, batched) {
            (Ok(alone), Ok(batched)) => assert_same(name, alone, batched),
            (Err(a), Err(b)) => {
                assert!(a.is_bad_input() && b.is_bad_input(), "{name}: {a} / {b}");
            }
            (a, b) => panic!("{name}: alone {a:?}, batched {b:?}"),
        }
    }
    let failed: Vec<&str> = inputs
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_err())
        .map(|((name, _), _)| *name)
        .collect();
    assert_eq!(failed, ["not an image", "truncated chelsea.jpg"]);

    // Six good images in batches of at most four: at least two runs, and fewer than six (how
    // many exactly depends on when each thread got going).
    let stats = batched.batch_stats();
    assert_eq!(stats.images, 6, "{stats:?}");
    assert!(
        (2..6).contains(&stats.runs),
        "six images took {} runs",
        stats.runs
    );
}

#[test]
fn min_score_and_top_k_come_from_config() {
    let strict = Classifier::load(&RecognizerConfig {
        min_score: 0.1,
        category_min_score: 0.5,
        ..config()
    })
    .expect("load");
    let recognition = recognize(&strict, &photo("chelsea.jpg"), 5).expect("classify");
    // tiger cat, Egyptian cat, tabby pass 0.1; lynx (0.02) and window screen do not.
    assert_eq!(recognition.tags.len(), 3, "{recognition:?}");
    assert!(recognition.tags.iter().all(|t| t.score >= 0.1));
    assert!(recognition.categories.iter().all(|c| c.score >= 0.5));
    assert!(
        recognition
            .categories
            .iter()
            .any(|c| c.name == "animal/cat"),
        "{recognition:?}"
    );
    assert_eq!(
        recognize(&strict, &photo("chelsea.jpg"), 1)
            .expect("top-1")
            .tags
            .len(),
        1
    );
}
