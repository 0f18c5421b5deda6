-- Addresses each user has logged in from (issue 19, login under attack). The account-wide login
-- throttle ('user:<name>' in login_throttle) counts only attempts from addresses *not* listed
-- here, so a distributed attack on an account cannot lock its owner out of her usual places.
-- depends: 0011_audit

CREATE TABLE login_addresses (
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    ip           text NOT NULL CHECK (length(ip) BETWEEN 1 AND 100),
    last_success timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, ip)
);
