"""Benchmark: reminder emails/s with 1, 2 and 3 worker hosts, side by side in one run.

    python -m benchmarks.scale_out [--emails 2000] [--hosts 3] [--rounds 1]   (as root)

Builds the multi-host cluster of tests/integration/multihost.py (network namespaces on a
bridge of its own: a services namespace with its own PostgreSQL, Redis, SMTP sink and beat;
worker hosts running the Procfile's workers with concurrency 1), so it touches no shared
server and needs no DATABASE_URL or REDIS_URL. For each host count it starts the workers of
that many hosts (none of the others), makes N due reminders, enqueues them as the sweep does
and times from the enqueue to the last email at the sink; between two counts every worker is
stopped, the broker emptied and the rows made anew. `--rounds` repeats the series
(1, 2, 3, 1, 2, 3, ...) and reports the best round of each count.

It prints a table: hosts, emails/s, the ratio to 1 host, the emails each host sent, and
checks every Message-ID arrived exactly once (exit status 1 otherwise). Settings are the
project's defaults unless exported before the run. On a shared machine only the ratios of
one run mean anything. It is a script, not a test.
"""

import argparse
import os
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=2000, help="due reminders per run")
    parser.add_argument("--hosts", type=int, default=3, help="the most worker hosts")
    parser.add_argument("--rounds", type=int, default=1, help="series of runs; best kept")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run at most")
    args = parser.parse_args(argv)

    from tests.integration.multihost import Cluster, unavailable

    reason = unavailable()
    if reason:
        print(f"cannot build the cluster: {reason}", file=sys.stderr)
        return 2
    ok = True
    rates: dict[int, list[float]] = {}  # per host count, one rate per round
    best: dict[int, tuple[float, float, dict]] = {}
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with Cluster(hosts=args.hosts, label="bench") as cluster:
        for round_ in range(1, args.rounds + 1):
            for count in range(1, args.hosts + 1):
                cluster.reset()
                cluster.start_workers(cluster.hosts[:count])
                result = cluster.deliver(args.emails, timeout=args.timeout)
                exact = not (result.missing or result.repeated or result.unexpected)
                ok &= exact
                rate = len(result.arrivals) / result.duration if result.duration else 0.0
                print(
                    f"round {round_}, {count} host(s): {rate:.1f} emails/s, "
                    f"{result.duration:.1f} s, per host {result.per_host()}, "
                    f"exactly once: {'yes' if exact else 'NO: ' + result.summary()}",
                    flush=True,
                )
                rates.setdefault(count, []).append(rate)
                if count not in best or rate > best[count][0]:
                    best[count] = (rate, result.duration, result.per_host())
        cluster.reset()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    floor = best[1][0]
    print(f"\n{args.emails} emails per run, batches of the default size, one email worker")
    print("process per host (concurrency 1); best of", args.rounds, "round(s)\n")
    print(f"{'hosts':>5}  {'emails/s':>9}  {'x 1 host':>8}  {'seconds':>8}  per host")
    for count, (rate, seconds, per_host) in sorted(best.items()):
        ratio = rate / floor if floor else 0.0
        sent = "/".join(str(n) for n in per_host.values())
        print(f"{count:>5}  {rate:>9.1f}  {ratio:>8.2f}  {seconds:>8.1f}  {sent}")
    if args.rounds > 1:
        # The load moves between rounds: each round's own ratios, taken minutes apart at most.
        print("\neach round on its own (emails/s, x 1 host of that round):")
        for count in sorted(rates):
            cells = [
                f"{rate:6.1f} ({rate / rates[1][i]:.2f})" if rates[1][i] else f"{rate:6.1f}"
                for i, rate in enumerate(rates[count])
            ]
            print(f"{count:>5}  " + "  ".join(cells))
    print(f"\nevery Message-ID exactly once in every run: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
