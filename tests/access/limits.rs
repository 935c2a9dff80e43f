//! Access control: rate limits.

use crate::support::*;

/// With `upload.rate_per_minute = 3` and `access.rate_per_minute = 5`, one key's 4th upload
/// request and 6th list request are 429 with `Retry-After`, while another key (from the same
/// address) is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_and_queries_are_rate_limited_per_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.upload.rate_per_minute = 3;
    config.access.rate_per_minute = 5;
    let running = spawn(config).await;
    let base = running.base_url.clone();
    let one = Client::new(&base, &key_for(&running, Role::Editor, "default").await.1);
    let other = Client::new(&base, &key_for(&running, Role::Editor, "default").await.1);

    let mut wrong = Vec::new();
    let mut refused_with_retry = |what: &str, answer: &Answer| {
        let wait: Option<u64> = answer.header("retry-after").parse().ok();
        if answer.status != 429 || !wait.is_some_and(|w| (1..=60).contains(&w)) {
            wrong.push(format!(
                "{what}: {} with Retry-After {:?}: {}",
                answer.status,
                answer.header("retry-after"),
                answer.body
            ));
        } else if !answer.json()["error"].is_string() {
            wrong.push(format!("{what}: no JSON error: {}", answer.body));
        }
    };
    let upload = json!({ "filename": "a.jpg", "content_type": "image/jpeg", "size": 1000 });
    let upload_as = |client: &Client| {
        let key = client.key.clone();
        let (base, upload) = (base.clone(), upload.clone());
        async move {
            let who = Presents::Bearer(&key);
            send(&base, Method::POST, "/api/uploads", who, Some(&upload)).await
        }
    };
    let list_as = |client: &Client| {
        let (key, base) = (client.key.clone(), base.clone());
        async move {
            send(
                &base,
                Method::GET,
                "/api/images",
                Presents::Bearer(&key),
                None,
            )
            .await
        }
    };
    for i in 1..=3 {
        let answer = upload_as(&one).await;
        assert_eq!(answer.status, 201, "upload request {i}: {}", answer.body);
    }
    refused_with_retry("4th upload request", &upload_as(&one).await);
    let answer = upload_as(&other).await;
    assert_eq!(answer.status, 201, "another key's upload: {}", answer.body);

    for i in 1..=5 {
        let answer = list_as(&one).await;
        assert_eq!(answer.status, 200, "list request {i}: {}", answer.body);
    }
    refused_with_retry("6th list request", &list_as(&one).await);
    let answer = list_as(&other).await;
    assert_eq!(answer.status, 200, "another key's list: {}", answer.body);

    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    running.stop().await.expect("clean stop");
}
