
#[test]
fn concurrent_changes_share_syncs_and_all_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let registry = std::sync::Arc::new(Registry::open(dir.path()).unwrap());
    let generation = registry.generation();
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let registry = registry.clone();
            std::thread::spawn(move || {
                for index in 0..50 {
                    registry
                        .create_thing(&format!("w{writer}-{index}"), None, BTreeMap::new())
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    assert_eq!(registry.generation(), generation + 200, "one move per change");
    let state = dump(&registry);
    drop(registry);
    let reopened = Registry::open(dir.path()).unwrap();
    assert_eq!(dump(&reopened), state);
    let all = reopened
        .list_things(
            &ThingFilter::default(),
            &Page {
                marker: None,
                page_size: 1000,
            },
        )
        .unwrap();
    assert_eq!(all.items.len(), 200);
}
