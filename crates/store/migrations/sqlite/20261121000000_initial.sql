-- subgate's initial schema (SQLite). Times are Unix milliseconds, ids are
-- TEXT, JSON is TEXT. Keep in step with migrations/postgres.

-- Accounts that subgate holds credentials for (logins and imported
-- subscriptions). API keys written in the config file are accounts too, but
-- they live in the config and are not copied here.
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    provider    TEXT NOT NULL,
    name        TEXT NOT NULL,
    auth_kind   TEXT NOT NULL,
    -- JSON with tokens: secret, never logged.
    credentials TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    priority    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (provider, name)
);

-- Keys subgate issues to its clients. Only a SHA-256 of the secret is kept.
CREATE TABLE client_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    -- JSON: allowed models, providers and accounts.
    scopes       TEXT NOT NULL,
    -- JSON: rate limits, concurrency and budget.
    limits       TEXT NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);

-- One row per client request.
CREATE TABLE usage_records (
    id                 TEXT PRIMARY KEY,
    at                 INTEGER NOT NULL,
    client_key_id      TEXT,
    provider           TEXT,
    account_id         TEXT,
    account_name       TEXT,
    model              TEXT NOT NULL,
    upstream_model     TEXT,
    client_dialect     TEXT NOT NULL,
    upstream_dialect   TEXT,
    stream             BOOLEAN NOT NULL,
    usage_reported     BOOLEAN NOT NULL,
    input_tokens       INTEGER NOT NULL DEFAULT 0,
    output_tokens      INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens  INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens   INTEGER NOT NULL DEFAULT 0,
    latency_ms         INTEGER NOT NULL,
    first_token_ms     INTEGER,
    status             INTEGER NOT NULL,
    error_class        TEXT
);
CREATE INDEX usage_records_at ON usage_records (at);
CREATE INDEX usage_records_client_key_at ON usage_records (client_key_id, at);

-- Logins in progress (PKCE verifier, device code): secret, short-lived.
CREATE TABLE oauth_flows (
    state      TEXT PRIMARY KEY,
    provider   TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Why an account (or one model on it) is not taking requests, and until
-- when. An empty model means the whole account.
CREATE TABLE account_health (
    account_id TEXT NOT NULL,
    model      TEXT NOT NULL DEFAULT '',
    state      TEXT NOT NULL,
    until_at   INTEGER,
    reason     TEXT,
    failures   INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, model)
);

CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
