-- The schema of the registry before schema versioning (user_version 0), as it wrote every database.
CREATE TABLE IF NOT EXISTS repositories (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS repository_blobs (
    repository_id INTEGER NOT NULL REFERENCES repositories(id),
    digest TEXT NOT NULL REFERENCES blobs(digest),
    linked_at INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS repository_blobs_by_digest ON repository_blobs(digest);
CREATE TABLE IF NOT EXISTS manifests (
    repository_id INTEGER NOT NULL REFERENCES repositories(id),
    digest TEXT NOT NULL REFERENCES blobs(digest),
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    artifact_type TEXT,
    subject TEXT,
    annotations TEXT,
    pushed_at INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS manifests_by_subject ON manifests(repository_id, subject, digest) WHERE subject IS NOT NULL;
CREATE TABLE IF NOT EXISTS manifest_references (
    repository_id INTEGER NOT NULL,
    manifest TEXT NOT NULL,
    target TEXT NOT NULL,
    kind INTEGER NOT NULL,
    PRIMARY KEY (repository_id, manifest, target),
    FOREIGN KEY (repository_id, manifest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tags (
    repository_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (repository_id, name),
    FOREIGN KEY (repository_id, digest) REFERENCES manifests(repository_id, digest)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_by_digest ON tags(repository_id, digest);
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    repository TEXT NOT NULL,
    started_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS uploads_by_start ON uploads(started_at);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    action TEXT NOT NULL,
    repository TEXT NOT NULL,
    digest TEXT,
    tag TEXT,
    media_type TEXT,
    size INTEGER);
CREATE INDEX IF NOT EXISTS events_by_time ON events(at);

