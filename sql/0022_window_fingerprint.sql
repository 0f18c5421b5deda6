-- Late readings (a gateway's outbox replayed after an outage) must reach stored report windows.
-- Each stored window keeps the number of good readings the daily rollup counted over the UTC days
-- it overlaps; when that number changes, the window is recomputed on the next read.
-- depends: 0021_reports

ALTER TABLE tank_windows ADD COLUMN fingerprint bigint;
