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
