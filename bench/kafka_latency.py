#!/usr/bin/env python3
"""Produce latency: COUNT messages one at a time (acks=all, each flushed
before the next), printing p50 and p99 in milliseconds as JSON.

  kafka_latency.py BOOTSTRAP TOPIC COUNT
"""
import json
import sys
import time

from confluent_kafka import Producer

bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
p.produce(topic, b"warmup")
p.flush(10)
lat = []
for i in range(count):
    t = time.perf_counter()
    p.produce(topic, b"x" * 100)
    p.flush(10)
    lat.append((time.perf_counter() - t) * 1000)
lat.sort()
print(json.dumps({"p50": lat[len(lat) // 2], "p99": lat[int(len(lat) * 0.99) - 1]}))
