#!/usr/bin/env python3
"""Run llama.cpp's HTTP server (via the `xllamacpp` wheel) in the foreground.

xllamacpp ships llama.cpp's C++ server as a Python extension; it has no CLI
entry point. `xllamacpp.Server(params)` loads the model, binds the socket and
serves from native threads, returning immediately. This script builds the
`CommonParams`, starts the server, prints the listening address, then simply
sleeps until it gets SIGTERM/SIGINT (the default action of SIGTERM ends the
process, native server threads included).

Used by .ci/llama-server.sh; can also be run by hand:

    .ci/.venv/bin/python .ci/llama_launch.py --model .ci/.llama/SmolLM2-135M-Instruct.Q4_1.gguf \
        --port 8091 --threads 1 --parallel 4 --ctx-size 4096
"""

import argparse
import os
import signal
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="path to a .gguf file")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8091)
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU threads for generation and prompt processing")
    ap.add_argument("--parallel", type=int, default=4,
                    help="number of slots (concurrent sequences)")
    ap.add_argument("--ctx-size", type=int, default=4096,
                    help="total KV context, split evenly across slots")
    ap.add_argument("--alias", default="",
                    help="model name to report (default: the model path)")
    ap.add_argument("--no-metrics", action="store_true",
                    help="disable the Prometheus /metrics endpoint")
    args = ap.parse_args()

    if not os.path.isfile(args.model):
        print(f"llama_launch: model file not found: {args.model}", file=sys.stderr)
        return 2

    import xllamacpp  # imported late so --help works without the wheel

    p = xllamacpp.CommonParams()
    p.model.path = os.path.abspath(args.model)
    p.hostnames = [args.host]
    p.port = args.port
    p.cpuparams.n_threads = args.threads
    p.cpuparams_batch.n_threads = args.threads
    p.n_parallel = args.parallel
    p.n_ctx = args.ctx_size
    p.endpoint_metrics = not args.no_metrics
    p.ui = False  # no web UI needed
    if args.alias:
        p.model_alias = {args.alias}

    print(f"llama_launch: xllamacpp {xllamacpp.__version__}, pid {os.getpid()}",
          flush=True)
    # Constructing Server loads the model and starts listening (non-blocking).
    server = xllamacpp.Server(p)
    print(f"llama_launch: listening on {server.listening_address}", flush=True)

    # Keep a reference to `server` and idle until told to stop.
    def _stop(signum, _frame):
        print(f"llama_launch: signal {signum}, exiting", flush=True)
        os._exit(0)  # skip native destructors: they may block on open sockets

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
