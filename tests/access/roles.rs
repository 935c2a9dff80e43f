//! Access control: roles.

use crate::support::*;

/// Every route against every kind of caller: no key, a malformed key, a well-formed key nobody
/// made, and a key of each role. Callers without a valid key get 401 (with `WWW-Authenticate:
/// Bearer`), a role below the route's 403, both with a JSON `{"error"}`; `/readyz` answers
/// everyone but details only admins; the page and health are public. Every response carries the
/// security headers. All mismatches are reported together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_is_refused_what_it_may_not_do_on_every_route() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = spawn(test_config(dir.path())).await;
    let base = running.base_url.clone();
    let admin = admin_key(dir.path());
    let (_, uploader) = key_for(&running, Role::Uploader, "default").await;
    let (_, editor) = key_for(&running, Role::Editor, "default").await;
    // Revoked by the admin column, the last to run.
    let (victim, _) = key_for(&running, Role::Uploader, "default").await;
    let unknown = imgpipe_auth::token::generate().expect("random").key;

    // An image of the tenant, done, so its routes have something to show.
    let admin_client = Client::new(&base, &admin);
    let ticket = admin_client
        .upload("cat.jpg", "image/jpeg", photo("chelsea.jpg"))
        .await;
    let doc = admin_client.wait_terminal(&ticket.image_id, DEADLINE).await;
    assert_eq!(doc["status"], "done", "{doc}");
    let keys_before = running.backends.keys.list_keys().await.expect("keys").len();

    let callers: [(&str, Presents); 6] = [
        ("no key", Presents::Nothing),
        ("malformed key", Presents::Bearer("not-a-key")),
        ("unknown key", Presents::Bearer(&unknown)),
        ("uploader", Presents::Bearer(&uploader)),
        ("editor", Presents::Bearer(&editor)),
        ("admin", Presents::Bearer(&admin)),
    ];
    let id = &ticket.image_id;
    let upload = json!({ "filename": "x.jpg", "content_type": "image/jpeg", "size": 1000 });
    let complete = json!({ "key": ticket.key });
    let new_key = json!({ "role": "uploader", "name": "made by the table" });
    let tags = json!({ "editor_tags": ["checked"] });
    const NONE: u16 = 401;
    #[rustfmt::skip]
    let table: Vec<(Method, String, Option<&Value>, [u16; 6])> = vec![
        //                                                       none  malf  unkn  upl   edit  admin
        (Method::POST, "/api/uploads".into(), Some(&upload),    [NONE, NONE, NONE, 201,  201,  201]),
        (Method::POST, format!("/api/uploads/{id}/complete"), Some(&complete),
                                                                [NONE, NONE, NONE, 202,  202,  202]),
        // An uploader lists only its own uploads (none here), and another's image is absent.
        (Method::GET, "/api/images".into(), None,               [NONE, NONE, NONE, 200,  200,  200]),
        (Method::GET, "/api/images?q=cat".into(), None,         [NONE, NONE, NONE, 200,  200,  200]),
        (Method::GET, format!("/api/images/{id}"), None,        [NONE, NONE, NONE, 404,  200,  200]),
        (Method::GET, "/api/tags".into(), None,                 [NONE, NONE, NONE, 403,  200,  200]),
        (Method::POST, "/api/keys".into(), Some(&new_key),      [NONE, NONE, NONE, 403,  403,  201]),
        (Method::GET, "/api/keys".into(), None,                 [NONE, NONE, NONE, 403,  403,  200]),
        (Method::DELETE, format!("/api/keys/{victim}"), None,   [NONE, NONE, NONE, 403,  403,  200]),
        (Method::GET, "/metrics".into(), None,                  [NONE, NONE, NONE, 403,  403,  200]),
        (Method::GET, "/readyz".into(), None,                   [200,  200,  200,  200,  200,  200]),
        (Method::GET, "/healthz".into(), None,                  [200,  200,  200,  200,  200,  200]),
        (Method::GET, "/".into(), None,                         [200,  200,  200,  200,  200,  200]),
        (Method::GET, "/app.js".into(), None,                   [200,  200,  200,  200,  200,  200]),
        (Method::GET, "/app.css".into(), None,                  [200,  200,  200,  200,  200,  200]),
        (Method::GET, format!("/api/images/{id}/thumb?v=x"), None,
                                                                [NONE, NONE, NONE, 404,  200,  200]),
        (Method::GET, format!("/api/images/{id}/preview"), None,
                                                                [NONE, NONE, NONE, 404,  200,  200]),
        // A redirect to the object store, followed.
        (Method::GET, format!("/api/images/{id}/original"), None,
                                                                [NONE, NONE, NONE, 404,  200,  200]),
        (Method::GET, "/api/facets?status=done".into(), None,   [NONE, NONE, NONE, 200,  200,  200]),
        (Method::GET, "/api/events".into(), None,               [NONE, NONE, NONE, 200,  200,  200]),
        (Method::PATCH, format!("/api/images/{id}"), Some(&tags),
                                                                [NONE, NONE, NONE, 403,  200,  200]),
        (Method::POST, format!("/api/images/{id}/reprocess"), None,
                                                                [NONE, NONE, NONE, 403,  202,  202]),
        // Unknown routes under /api/ are JSON 404s for everyone, never the S3 endpoint's XML.
        (Method::GET, "/api/no-such-route".into(), None,        [404,  404,  404,  404,  404,  404]),
        (Method::GET, "/api/images/".into(), None,              [404,  404,  404,  404,  404,  404]),
        // Last: the editor deletes the image, so the admin finds none.
        (Method::DELETE, format!("/api/images/{id}"), None,     [NONE, NONE, NONE, 403,  204,  404]),
    ];

    let mut wrong = Vec::new();
    for (method, path, body, expected) in &table {
        for ((who, presents), want) in callers.iter().zip(expected) {
            let what = format!("{method} {path} as {who}");
            let answer = send(&base, method.clone(), path, *presents, *body).await;
            if answer.status != *want {
                wrong.push(format!(
                    "{what}: {} instead of {want}: {}",
                    answer.status,
                    answer.body.chars().take(200).collect::<String>()
                ));
            }
            if answer.status >= 400
                && path.starts_with("/api/")
                && !answer.json()["error"].is_string()
            {
                wrong.push(format!("{what}: no JSON error body: {}", answer.body));
            }
            if answer.status == 401 && !answer.header("www-authenticate").starts_with("Bearer") {
                wrong.push(format!("{what}: 401 without WWW-Authenticate: Bearer"));
            }
            wrong.extend(security_header_problems(&what, &answer.headers));
            match (path.as_str(), *who, answer.status) {
                ("/readyz", "admin", _) => {
                    let details = answer.json();
                    if details["bus"] != "ok" || details["metadata"] != "ok" {
                        wrong.push(format!("{what}: no details: {}", answer.body));
                    }
                }
                ("/readyz", _, _) => {
                    let body = answer.json();
                    if body.get("bus").is_some() || body.get("metadata").is_some() {
                        wrong.push(format!("{what}: details given: {}", answer.body));
                    }
                }
                ("/metrics", _, 200) if !answer.body.contains("messages_total") => {
                    wrong.push(format!("{what}: not the metrics: {}", answer.body));
                }
                ("/", _, 200) if !answer.body.contains("<html") => {
                    wrong.push(format!("{what}: not the page"));
                }
                (p, _, 200) if *p == format!("/api/images/{id}") && answer.json()["id"] != *id => {
                    wrong.push(format!("{what}: another document: {}", answer.body));
                }
                ("/api/events", _, 200) if !answer.body.starts_with("event: ready") => {
                    wrong.push(format!("{what}: not an event stream: {}", answer.body));
                }
                (p, _, 200)
                    if p.ends_with("/thumb?v=x")
                        && answer.header("content-type") != "image/jpeg" =>
                {
                    wrong.push(format!(
                        "{what}: not the thumbnail: {}",
                        answer.header("content-type")
                    ));
                }
                _ => {}
            }
        }
    }
    // Of all the key requests, only the admin's made one.
    let keys_after = running.backends.keys.list_keys().await.expect("keys");
    if keys_after.len() != keys_before + 1 {
        wrong.push(format!(
            "{} keys made by the table instead of 1",
            keys_after.len() - keys_before
        ));
    }
    if !keys_after
        .iter()
        .any(|k| k.id == victim && k.revoked_at.is_some())
    {
        wrong.push("the admin's DELETE did not revoke the key".to_owned());
    }
    assert!(
        wrong.is_empty(),
        "{} mismatches:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    crate::common::wait_idle(&running, DEADLINE).await;
    running.stop().await.expect("clean stop");
}

/// An uploader sees its own uploads, through the list, search and the document, and nobody
/// else's in its tenant; an editor of the tenant sees them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploader_sees_its_own_uploads_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = spawn(test_config(dir.path())).await;
    let base = running.base_url.clone();
    let (_, mine) = key_for(&running, Role::Uploader, "default").await;
    let (_, theirs) = key_for(&running, Role::Uploader, "default").await;
    let (_, editor) = key_for(&running, Role::Editor, "default").await;
    let (me, other, desk) = (
        Client::new(&base, &mine),
        Client::new(&base, &theirs),
        Client::new(&base, &editor),
    );
    let my_ticket = me
        .upload("mine.jpg", "image/jpeg", photo("chelsea.jpg"))
        .await;
    let their_ticket = other
        .upload("theirs.jpg", "image/jpeg", photo("chelsea.jpg"))
        .await;
    let doc = me.wait_terminal(&my_ticket.image_id, DEADLINE).await;
    assert_eq!(doc["status"], "done", "{doc}");
    other.wait_terminal(&their_ticket.image_id, DEADLINE).await;

    let (ids, body) = list_ids(&me, &[]).await;
    assert_eq!(ids, std::slice::from_ref(&my_ticket.image_id), "{body}");
    let (ids, body) = list_ids(&me, &[("q", "mine")]).await;
    assert_eq!(ids, std::slice::from_ref(&my_ticket.image_id), "{body}");
    let (ids, body) = list_ids(&me, &[("q", "theirs")]).await;
    assert!(ids.is_empty(), "{body}");
    assert!(
        me.image(&their_ticket.image_id).await.is_none(),
        "another's upload is 404"
    );
    let (ids, body) = list_ids(&desk, &[]).await;
    assert_eq!(ids.len(), 2, "the editor sees both: {body}");
    running.stop().await.expect("clean stop");
}
