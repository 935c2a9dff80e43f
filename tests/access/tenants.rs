//! Access control: tenants.

use crate::support::*;

/// Tenants `a` and `b` each upload the same photo under the same name, so that a leak would show
/// in every list, search, tag filter and tag count. Each sees only its own image; the other's id
/// is 404; nothing any of b's requests returns mentions a's image or its renditions. The admin of
/// both sees both (the control that the filters do find the images).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_cannot_see_each_others_images() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = spawn(test_config(dir.path())).await;
    let base = running.base_url.clone();
    let (_, both) = make_key(
        running.backends.keys.as_ref(),
        Role::Admin,
        vec!["a".to_owned(), "b".to_owned()],
        "admin of a and b",
    )
    .await
    .expect("key made");
    let admin = Client::new(&base, &both);

    // An admin makes keys only for its own tenants.
    let default_admin = Client::new(&base, &admin_key(dir.path()));
    for (who, client, tenant) in [
        ("admin of default", &default_admin, "a"),
        ("admin of a and b", &admin, "c"),
    ] {
        let res = client
            .api(Method::POST, "/api/keys")
            .json(&json!({ "role": "editor", "tenant": tenant }))
            .send()
            .await
            .expect("API reachable");
        assert_eq!(res.status(), 403, "{who} made a key for tenant {tenant}");
        assert!(res.json::<Value>().await.expect("json")["error"].is_string());
    }
    let mut editors = Vec::new();
    for tenant in ["a", "b"] {
        let res = admin
            .api(Method::POST, "/api/keys")
            .json(&json!({ "role": "editor", "tenant": tenant, "name": format!("editor of {tenant}") }))
            .send()
            .await
            .expect("API reachable");
        assert_eq!(res.status(), 201, "editor key for {tenant}");
        let made: Value = res.json().await.expect("json");
        assert_eq!(made["details"]["tenants"], json!([tenant]), "{made}");
        assert_eq!(made["details"]["role"], "editor", "{made}");
        assert!(made["details"].get("hash").is_none(), "hash shown: {made}");
        editors.push(Client::new(
            &base,
            made["key"].as_str().expect("the key, shown once"),
        ));
    }
    let (a, b) = (&editors[0], &editors[1]);

    let ta = a
        .upload("cat.jpg", "image/jpeg", photo("chelsea.jpg"))
        .await;
    let tb = b
        .upload("cat.jpg", "image/jpeg", photo("chelsea.jpg"))
        .await;
    assert!(
        ta.key.starts_with(&format!("a/{}/", ta.image_id)),
        "{}",
        ta.key
    );
    assert!(
        tb.key.starts_with(&format!("b/{}/", tb.image_id)),
        "{}",
        tb.key
    );
    let da = a.wait_terminal(&ta.image_id, DEADLINE).await;
    let db = b.wait_terminal(&tb.image_id, DEADLINE).await;
    for (doc, tenant) in [(&da, "a"), (&db, "b")] {
        assert_eq!(doc["status"], "done", "{doc}");
        assert_eq!(doc["tenant"], tenant, "{doc}");
    }
    // The same photo gets the same tags: a label both carry.
    let label = labels(&da).first().cloned().expect("a's image has tags");
    assert!(labels(&db).contains(&label), "{da}\n{db}");

    // a's renditions, as a's document names them; a can load them.
    let a_renditions: Vec<(String, String)> = ["thumb", "preview"]
        .iter()
        .map(|which| {
            let r = &da["renditions"][*which];
            (
                r["key"].as_str().expect("rendition key").to_owned(),
                r["url"].as_str().expect("rendition url").to_owned(),
            )
        })
        .collect();
    for (key, url) in &a_renditions {
        let res = a.api(Method::GET, url).send().await.expect("API reachable");
        assert_eq!(res.status(), 200, "a loads its rendition {key} at {url}");
        let res = b.api(Method::GET, url).send().await.expect("API reachable");
        assert_eq!(
            res.status(),
            404,
            "b may not load a's rendition {key} at {url}"
        );
    }

    for (me, mine, other, other_key) in [
        (a, &ta.image_id, &tb.image_id, &tb.key),
        (b, &tb.image_id, &ta.image_id, &ta.key),
    ] {
        let mut seen = String::new();
        for query in [
            vec![],
            vec![("q", "cat")],
            vec![("q", label.as_str())],
            vec![("tag", label.as_str())],
            vec![("status", "done")],
        ] {
            let (ids, body) = list_ids(me, &query).await;
            assert_eq!(ids, vec![mine.clone()], "list {query:?}");
            seen.push_str(&body);
        }
        let (count, body) = tag_count(me, &label).await;
        assert_eq!(count, 1, "{label} counted across tenants: {body}");
        seen.push_str(&body);

        let res = me
            .api(Method::GET, &format!("/api/images/{other}"))
            .send()
            .await
            .expect("API reachable");
        assert_eq!(res.status(), 404, "the other tenant's image");
        // Nothing but an error: not the owner, not the document.
        let body: Value = res.json().await.expect("json");
        assert!(body["error"].is_string(), "{body}");
        assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");

        // Completing the other tenant's upload is refused too.
        let res = me
            .api(Method::POST, &format!("/api/uploads/{other}/complete"))
            .json(&json!({ "key": other_key }))
            .send()
            .await
            .expect("API reachable");
        assert!(
            res.status().is_client_error(),
            "completed the other tenant's upload: {}",
            res.status()
        );

        // Nothing returned names the other image.
        assert!(!seen.contains(other.as_str()), "{seen}");
        if me.key == b.key {
            for (key, url) in &a_renditions {
                assert!(!seen.contains(key.as_str()), "b saw a's {key}");
                assert!(!seen.contains(url.as_str()), "b got a's URL for {key}");
            }
        }
    }

    // The admin of both tenants sees both: the filters above did find the images.
    let (ids, _) = list_ids(&admin, &[("tag", label.as_str())]).await;
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&ta.image_id) && ids.contains(&tb.image_id));
    assert_eq!(tag_count(&admin, &label).await.0, 2);

    // Every object of a's image is under a's prefix, so a storage policy can follow tenants.
    for (key, _) in &a_renditions {
        assert!(
            key.starts_with("a/"),
            "rendition key {key:?} of tenant a's image is not under a/"
        );
    }
    running.stop().await.expect("clean stop");
}
