//! The GraphQL schema is snapshot-tested, so an accidental change shows up in review.

use std::path::Path;

#[test]
fn the_schema_matches_its_snapshot() {
    let sdl = api_gateway::schema::sdl();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &sdl).expect("write the snapshot");
    }
    let expected = std::fs::read_to_string(&path).expect("schema.graphql: create it with UPDATE_SNAPSHOTS=1");
    assert!(
        sdl == expected,
        "the GraphQL schema changed. If that was intended, review the diff and run\n  \
         UPDATE_SNAPSHOTS=1 cargo nextest run -p api-gateway schema\n--- new schema ---\n{sdl}"
    );
}
