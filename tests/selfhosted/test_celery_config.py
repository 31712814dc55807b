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


def test_tasks_retry_transient_errors_with_capped_exponential_backoff(settings):
    from celery.utils.time import get_exponential_backoff_interval

    from releases.errors import TransientError
    from releases.tasks import ReliableTask, stage_build

    assert isinstance(stage_build, ReliableTask)
    assert TransientError in stage_build.autoretry_for
    assert stage_build.max_retries == settings.TASK_MAX_RETRIES == 8  # the documented default
    waits = [
        get_exponential_backoff_interval(
            factor=stage_build.retry_backoff,
            retries=attempt,
            maximum=stage_build.retry_backoff_max,
            full_jitter=False,
        )
        for attempt in range(stage_build.max_retries)
    ]
    # 5 s, doubling each retry, never more than 10 minutes
    assert waits[:4] == [5, 10, 20, 40]
    assert max(waits) == 600 and waits == sorted(waits)


def _attempts_of(error: type[Exception]) -> tuple[list[int], object]:
    """Run a task of our base class that always raises `error`; the retries it was given."""
    seen: list[int] = []

    @app.task(base=_reliable(), bind=True, name=f"tests.always_raises.{error.__name__}")
    def always_raises(self):
        seen.append(self.request.retries)
        raise error("boom")

    # Eager retries re-apply the task with the app's propagation setting: keep the failure in
    # the result instead of raising it, as a worker would.
    propagates = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    try:
        result = always_raises.apply()
    finally:
        app.conf.task_eager_propagates = propagates
    return seen, result


def _reliable():
    from releases.tasks import ReliableTask

    return ReliableTask


def test_a_transient_error_is_retried_a_bounded_number_of_times_then_fails(settings):
    from releases.errors import TransientError

    seen, result = _attempts_of(TransientError)
    assert seen == list(range(settings.TASK_MAX_RETRIES + 1))  # the first run + 8 retries
    assert result.failed() and isinstance(result.result, TransientError)


def test_a_programming_error_is_not_retried():
    seen, result = _attempts_of(KeyError)
    assert seen == [0]
    assert result.failed() and isinstance(result.result, KeyError)
