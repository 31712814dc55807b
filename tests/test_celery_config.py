"""The Celery app: queues, late acknowledgement, prefetch 1, routes, retries."""

from __future__ import annotations

from selfhosted.celery import app


def test_tasks_are_acknowledged_late_and_given_back_when_a_worker_dies():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1


def test_the_visibility_timeout_outlasts_the_longest_task(settings):
    assert settings.CELERY_BROKER_URL.startswith("redis")
    timeout = app.conf.broker_transport_options["visibility_timeout"]
    assert app.conf.task_time_limit < timeout


def test_work_is_routed_to_the_staging_and_promotion_queues():
    queues = {queue.name: queue for queue in app.conf.task_queues}
    assert {"staging", "promotion"} <= set(queues)
    # one routing key per queue: a message must never land in two queues
    assert len({q.routing_key for q in queues.values()}) == len(queues)
    router = app.amqp.router
    assert router.route({}, "releases.tasks.stage_build")["queue"].name == "staging"
    assert router.route({}, "releases.tasks.review_open")["queue"].name == "staging"
    assert router.route({}, "releases.tasks.promote")["queue"].name == "promotion"
    assert router.route({}, "releases.tasks.reconcile")["queue"].name == "promotion"


def test_tasks_retry_transient_errors_with_capped_exponential_backoff():
    from releases.tasks import TransientError, stage_build

    assert TransientError in stage_build.autoretry_for
    assert stage_build.retry_backoff and stage_build.retry_backoff_max <= 600
    assert stage_build.max_retries is not None
