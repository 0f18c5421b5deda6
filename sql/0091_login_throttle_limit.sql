-- Each throttle key remembers its limit, so that one statement can count an attempt and lock
-- the key when it reaches the limit (api.auth._RESERVE; issue 19, login under attack).
-- depends: 0090_login_addresses

ALTER TABLE login_throttle ADD COLUMN lock_limit integer NOT NULL DEFAULT 5 CHECK (lock_limit >= 1);
