//! The file watch: one reload per save, also for editors' atomic renames.

use llm_fallback::mock::{MockServer, ServerReply};

use super::{config, Gateway};
use crate::waiting::poll_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_atomic_rename_save_reloads_exactly_once() {
    let mock = MockServer::start().await;
    mock.always("gpt", ServerReply::text("hello"));
    let gw = Gateway::start(&config(&mock.base_url(), r#"chat = ["mock/gpt"]"#, "")).await;
    let _watch = gw.reloader.watch().unwrap();

    let first = config(
        &mock.base_url(),
        r#"chat = ["mock/gpt"]
        one = ["mock/gpt"]"#,
        "",
    );
    gw.file.save_atomically(&first);
    poll_until("the save is reloaded", async || {
        gw.reloader.generation().number >= 2
    })
    .await;
    let after_first = gw.reloader.generation();
    assert_eq!(after_first.number, 2);
    assert_eq!(gw.chat("one").await.status(), 200);

    // A second save: had the first made more than one reload (its events
    // unmerged), they would all have run before this one, which waits
    // for the file to be quiet.
    let second = config(
        &mock.base_url(),
        r#"chat = ["mock/gpt"]
        two = ["mock/gpt"]"#,
        "",
    );
    gw.file.save_atomically(&second);
    poll_until("the second save is reloaded", async || {
        gw.reloader.generation().number >= 3
    })
    .await;
    let after_second = gw.reloader.generation();
    assert_eq!(after_second.number, 3, "one save made more than one reload");
    assert_ne!(after_second.hash, after_first.hash);
    assert_eq!(gw.chat("two").await.status(), 200);
    assert_eq!(gw.chat("one").await.status(), 404);

    // Other files of the directory, and reading the config, reload nothing:
    // a third save is the next generation.
    std::fs::write(gw.file.path.with_file_name("notes.txt"), "unrelated").unwrap();
    let _ = std::fs::read_to_string(&gw.file.path).unwrap();
    gw.file.save_atomically(&first);
    poll_until("the third save is reloaded", async || {
        gw.reloader.generation().number >= 4
    })
    .await;
    assert_eq!(gw.reloader.generation().number, 4);
}

/// A Kubernetes ConfigMap volume: the config is a symlink through `..data`,
/// and an update swaps `..data` by a rename; the file's own name sees no
/// event.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_style_symlink_swap_reloads() {
    use std::os::unix::fs::symlink;

    let mock = MockServer::start().await;
    mock.always("gpt", ServerReply::text("hello"));
    let before = config(&mock.base_url(), r#"chat = ["mock/gpt"]"#, "");
    let gw = Gateway::start(&before).await;
    let dir = gw.file.path.parent().unwrap().to_owned();
    let version = |n: u32, toml: &str| {
        let data = dir.join(format!("..2026_12_03_{n}"));
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("gateway.toml"), toml).unwrap();
        data
    };
    let first = version(1, &before);
    symlink(&first, dir.join("..data")).unwrap();
    std::fs::remove_file(&gw.file.path).unwrap();
    symlink("..data/gateway.toml", &gw.file.path).unwrap();
    let _watch = gw.reloader.watch().unwrap();

    let after = config(
        &mock.base_url(),
        r#"chat = ["mock/gpt"]
        mounted = ["mock/gpt"]"#,
        "",
    );
    let second = version(2, &after);
    symlink(&second, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    poll_until("the swap is reloaded", async || {
        gw.reloader.generation().number >= 2
    })
    .await;
    assert_eq!(gw.reloader.generation().number, 2);
    assert_eq!(gw.chat("mounted").await.status(), 200);
}
