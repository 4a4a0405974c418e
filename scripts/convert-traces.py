#!/usr/bin/env python3
"""Convert the public workload traces of shared/traces/ to ebb's trace format.

    scripts/convert-traces.py SOURCE_DIR OUT_DIR [--hours H] [--max-rows N]

ebb's trace format is a CSV with a header: submit and duration in seconds
(submit relative to the window's start), table and quota optional. Each
converter reads one source file, takes the first H hours (default 6) of its
arrivals, keeps at most N rows, and writes OUT_DIR/<name>.csv. OUT_DIR/SOURCES.md
records, for every output, the source file and its sha256, the conversion
rule and the source's terms, so a converted sample can always be traced back.

Only sources whose terms allow redistribution are written (CC BY, the Parallel
Workloads Archive's "freely available" with attribution). The Alibaba traces
are "for research or study purpose" only: they are converted only with
--research-only, and their output must not be committed. The SWIM Facebook
sample has no task durations and is skipped rather than invented.
"""
import argparse, csv, datetime, gzip, hashlib, io, os, sys

def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()

def swf(path):
    """Standard Workload Format: field 2 submit, 4 run time, 5 processors.
    A job on P processors becomes P one-thread tasks of its run time, the
    job being the table (its tasks are one optimizing process)."""
    rows = []
    with gzip.open(path, 'rt', errors='replace') as f:
        for line in f:
            if line.startswith(';') or not line.strip():
                continue
            fl = line.split()
            if len(fl) < 18:
                continue
            submit, run, procs = float(fl[1]), float(fl[3]), int(fl[4])
            if run < 0 or submit < 0:
                continue
            for _ in range(max(1, procs)):
                rows.append((submit, run, 'job_%s' % fl[0]))
    return rows

def google(paths):
    """Borg 2011 task_events: submit = the task's SUBMIT event, duration =
    SCHEDULE to its FINISH/FAIL/KILL/EVICT/LOST; table = the job (its tasks
    are one optimizing process). Tasks present before the window (timestamp 0) are dropped."""
    submit, start, rows = {}, {}, []
    for p in paths:
        with gzip.open(p, 'rt') as f:
            for rec in csv.reader(f):
                ts, key, ev = int(rec[0]), (rec[2], rec[3]), int(rec[5])
                if ts == 0:
                    continue
                if ev == 0:
                    submit[key] = (ts, 'job_%s' % rec[2])
                elif ev == 1 and key in submit:
                    start[key] = ts
                elif ev in (2, 3, 4, 5, 6) and key in start:
                    sub, table = submit.pop(key)
                    rows.append((sub / 1e6, (ts - start.pop(key)) / 1e6, table))
    return rows

def genai(path):
    """GenTD26 requests: submit = gmt_create, duration = exec_time_seconds,
    table = groupId; only SUCCEED requests."""
    rows, t0 = [], None
    with open(path) as f:
        for r in csv.DictReader(f):
            if r['predict_status'] != 'SUCCEED' or not r['exec_time_seconds']:
                continue
            t = datetime.datetime.strptime(r['gmt_create'], '%Y-%m-%d %H:%M:%S').timestamp()
            rows.append((t, float(r['exec_time_seconds']), r['groupId']))
    return rows

def gpu2023(path):
    """OpenB pods: submit = creation_time, duration = deletion - scheduled
    (unscheduled pods dropped), table = qos."""
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            if not r['scheduled_time']:
                continue
            rows.append((float(r['creation_time']), float(r['deletion_time']) - float(r['scheduled_time']), r['qos']))
    return rows

PWA = 'Parallel Workloads Archive (Feitelson, Tsafrir, Krakov, JPDC 2014): freely available to researchers; cite the archive'
SOURCES = [
    ('google2011-borg', lambda d: google([os.path.join(d, 'google2011-task_events-part-%05d-of-00500.csv.gz' % i) for i in range(4)]),
     ['google2011-task_events-part-%05d-of-00500.csv.gz' % i for i in range(4)], google.__doc__,
     'Google clusterdata-2011-2, CC BY 4.0 (github.com/google/cluster-data)', True),
    ('kth-sp2-1996', lambda d: swf(os.path.join(d, 'kth-sp2-1996-2.1-cln.swf.gz')),
     ['kth-sp2-1996-2.1-cln.swf.gz'], swf.__doc__, PWA + '; acknowledge Lars Malinowsky', True),
    ('lcg-2005', lambda d: swf(os.path.join(d, 'lcg-2005-1.swf.gz')),
     ['lcg-2005-1.swf.gz'], swf.__doc__, PWA + '; acknowledge Hui Li', True),
    ('alibaba-genai2026', lambda d: genai(os.path.join(d, 'alibaba-genai2026-lora_request_trace.csv')),
     ['alibaba-genai2026-lora_request_trace.csv'], genai.__doc__, 'Alibaba clusterdata: research or study use only; do not commit', False),
    ('alibaba-gpu2023', lambda d: gpu2023(os.path.join(d, 'alibaba-gpu2023-openb_pod_list_default.csv')),
     ['alibaba-gpu2023-openb_pod_list_default.csv'], gpu2023.__doc__, 'Alibaba clusterdata: research or study use only; do not commit', False),
]

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('source_dir')
    ap.add_argument('out_dir')
    ap.add_argument('--hours', type=float, default=6)
    ap.add_argument('--max-rows', type=int, default=3000)
    ap.add_argument('--research-only', action='store_true', help='also convert sources whose terms forbid redistribution')
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    notes = ['# Converted trace samples\n',
             'Written by `scripts/convert-traces.py %s OUT --hours %g --max-rows %d`; do not edit by hand.\n' % (os.path.basename(a.source_dir.rstrip('/')) or a.source_dir, a.hours, a.max_rows),
             'Each file holds the first %g hours of arrivals of its source (submit times relative to the first), at most %d rows.\n' % (a.hours, a.max_rows)]
    for name, conv, files, how, terms, redistributable in SOURCES:
        if not redistributable and not a.research_only:
            print('skip %s: %s' % (name, terms), file=sys.stderr)
            continue
        paths = [os.path.join(a.source_dir, f) for f in files]
        if not all(os.path.exists(p) for p in paths):
            print('skip %s: source missing' % name, file=sys.stderr)
            continue
        rows = sorted(conv(a.source_dir))
        if not rows:
            continue
        t0 = rows[0][0]
        rows = [r for r in rows if r[0] - t0 < a.hours * 3600][:a.max_rows]
        out = os.path.join(a.out_dir, name + '.csv')
        with open(out, 'w', newline='') as f:
            w = csv.writer(f, lineterminator='\n')
            w.writerow(['submit', 'duration', 'table'])
            for s, d, t in rows:
                w.writerow(['%g' % round(s - t0, 3), '%g' % round(d, 3), t])
        notes.append('\n## %s.csv\n\n- rows: %d\n- source: %s\n- conversion: %s\n- terms: %s\n' % (
            name, len(rows), ', '.join('`%s` (sha256 %s)' % (f, sha256(p)) for f, p in zip(files, paths)),
            ' '.join(how.split()), terms))
        print('%s: %d rows' % (out, len(rows)), file=sys.stderr)
    with open(os.path.join(a.out_dir, 'SOURCES.md'), 'w') as f:
        f.writelines(notes)

if __name__ == '__main__':
    main()
