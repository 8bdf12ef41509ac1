#!/usr/bin/env python3
"""A real Kafka client for the tests: produce or consume with librdkafka
(python confluent-kafka) or kafka-python, and print one JSON line with what
happened, including the Kafka error a denial produced.

  kafka_client.py LIB produce BOOTSTRAP TOPIC COUNT [--api-version X.Y.Z]
  kafka_client.py LIB consume BOOTSTRAP TOPIC COUNT [--api-version X.Y.Z]
  kafka_client.py confluent assign BOOTSTRAP TOPIC COUNT

--timeout S (default 20) bounds each run.

`consume` joins a consumer group (subscribe); `assign` reads partition 0
without one (librdkafka reports a topic authorization error to a group
member only as an empty assignment, to an assigned consumer as an error).

LIB is `confluent` or `kafka-python`. Exit status 0 when every message was
delivered (or COUNT messages were read), 1 on a Kafka error, 2 on a timeout.
"""
import json
import sys
import time

TIMEOUT = 20.0


def out(**kw):
    print(json.dumps(kw), flush=True)


def confluent(action, bootstrap, topic, count, _api):
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

    base = {"bootstrap.servers": bootstrap, "client.id": "portcullis-test"}
    if action == "produce":
        p = Producer(dict(base, **{"message.timeout.ms": int(TIMEOUT * 1000), "acks": "all"}))
        errors = []
        delivered = []

        def report(err, msg):
            (errors if err else delivered).append(err.name() if err else msg.offset())

        for i in range(count):
            p.produce(topic, value=f"message {i}".encode(), callback=report)
        p.flush(TIMEOUT + 5)
        if errors:
            out(ok=False, error=errors[0], delivered=len(delivered))
            return 1
        out(ok=True, delivered=len(delivered))
        return 0
    c = Consumer(
        dict(
            base,
            **{
                "group.id": f"g-{topic}-{time.time_ns()}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": True,
            },
        )
    )
    if action == "assign":
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    else:
        c.subscribe([topic])
    got = []
    deadline = time.time() + TIMEOUT
    try:
        while len(got) < count and time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                out(ok=False, error=m.error().name(), received=len(got))
                return 1
            got.append(m.value().decode())
    except KafkaException as e:
        out(ok=False, error=e.args[0].name(), received=len(got))
        return 1
    finally:
        c.close()
    if len(got) < count:
        # A group member is told about an unauthorized topic only by an empty
        # assignment; the library's metadata API names the error.
        err = c_topic_error(base, topic)
        out(ok=False, error=err or "timeout", received=len(got))
        return 1 if err else 2
    out(ok=True, received=len(got), first=got[0])
    return 0


def c_topic_error(base, topic):
    from confluent_kafka.admin import AdminClient

    md = AdminClient(base).list_topics(topic, timeout=10)
    t = md.topics.get(topic)
    return t.error.name() if t is not None and t.error is not None else None


def kafka_python(action, bootstrap, topic, count, api):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.errors import KafkaError

    kw = {"bootstrap_servers": bootstrap, "client_id": "portcullis-test"}
    if api:
        kw["api_version"] = tuple(int(x) for x in api.split("."))
    if action == "produce":
        # Cilium's `produce` role is {Produce, Metadata, ApiVersions}: an
        # idempotent producer's InitProducerId needs its own rule.
        p = KafkaProducer(
            acks="all", max_block_ms=int(TIMEOUT * 1000), enable_idempotence=False, **kw
        )
        try:
            futures = [p.send(topic, f"message {i}".encode()) for i in range(count)]
            for f in futures:
                f.get(timeout=TIMEOUT)
        except KafkaError as e:
            out(ok=False, error=type(e).__name__)
            return 1
        finally:
            p.close(timeout=5)
        out(ok=True, delivered=count)
        return 0
    # kafka-python reports a refused topic of a subscription through its
    # cluster metadata ("Topic ... is not authorized"), not from poll().
    import logging

    refused = []

    class Refused(logging.Handler):
        def emit(self, record):
            if "not authorized" in record.getMessage():
                refused.append(record.getMessage())

    logging.getLogger("kafka.cluster").addHandler(Refused())
    c = KafkaConsumer(
        group_id=f"g-{topic}-{time.time_ns()}",
        auto_offset_reset="earliest",
        consumer_timeout_ms=int(TIMEOUT * 1000),
        **kw,
    )
    got = []
    try:
        c.subscribe([topic])
        deadline = time.time() + TIMEOUT
        while len(got) < count and time.time() < deadline and not refused:
            for _tp, msgs in c.poll(timeout_ms=500).items():
                got.extend(m.value.decode() for m in msgs)
    except KafkaError as e:
        out(ok=False, error=type(e).__name__, received=len(got))
        return 1
    finally:
        c.close()
    if len(got) < count:
        if refused:
            out(ok=False, error="TopicAuthorizationFailedError", detail=refused[0], received=len(got))
            return 1
        out(ok=False, error="timeout", received=len(got))
        return 2
    out(ok=True, received=len(got), first=got[0])
    return 0


def main():
    args = sys.argv[1:]
    global TIMEOUT
    api = None
    if "--timeout" in args:
        i = args.index("--timeout")
        TIMEOUT = float(args[i + 1])
        del args[i : i + 2]
    if "--api-version" in args:
        i = args.index("--api-version")
        api = args[i + 1]
        del args[i : i + 2]
    lib, action, bootstrap, topic, count = args
    run = {"confluent": confluent, "kafka-python": kafka_python}[lib]
    sys.exit(run(action, bootstrap, topic, int(count), api))


if __name__ == "__main__":
    main()
