-- One row per project: its current quota period, events accepted in it (by received_at, as the ingest API
-- counts them), and a linear projection to the period's end. The periods and limits are not restated here:
-- the loader writes them into raw.quota_periods from the plan rules the ingest API enforces (turret.plans;
-- docs/adr/0010-plan-rules-owner.md), and this model picks the one containing its clock.
-- "Now" is var('as_of') when given (the DAG's data interval end), else the data's own clock: the newest
-- data_interval_end in pipeline.runs or received_at in raw.events, so re-running a build on the same data
-- gives the same table; the wall clock only for an empty warehouse.
with

projects as (
    select * from {{ ref('stg_raw__projects') }}
),

quota_periods as (
    select * from {{ ref('stg_raw__quota_periods') }}
),

events as (
    select project_id, received_at from {{ ref('stg_raw__events') }}
),

clock as (
    select
        coalesce(
            {{ as_of_var() }},
            greatest(
                (select max(data_interval_end) from {{ ref('stg_pipeline__runs') }}),
                (select max(received_at) from events)
            ),
            cast(timezone('UTC', now()) as timestamp)
        ) as as_of_at
),

periods as (
    -- The period containing the clock; before a project's first period (a clock older than the project),
    -- its first period; past the last one written (a clock ahead of the last sync), its last period.
    select
        projects.project_id,
        projects.project_name,
        projects.plan,
        clock.as_of_at,
        quota_periods.period_start,
        quota_periods.period_end,
        quota_periods.event_limit,
    from projects
    cross join clock
    inner join quota_periods
        on projects.project_id = quota_periods.project_id
    qualify row_number() over (
        partition by projects.project_id
        order by
            (clock.as_of_at >= quota_periods.period_start and clock.as_of_at < quota_periods.period_end) desc,
            (quota_periods.period_start <= clock.as_of_at) desc,
            case when quota_periods.period_start <= clock.as_of_at then quota_periods.period_start end desc,
            quota_periods.period_start
    ) = 1
),

usage as (
    select
        periods.project_id,
        count(events.received_at) as events_accepted,
    from periods
    left join events
        on periods.project_id = events.project_id
        and events.received_at >= periods.period_start
        and events.received_at < periods.period_end
        and events.received_at <= periods.as_of_at
    group by all
),

measured as (
    select
        periods.*,
        usage.events_accepted,
        epoch(periods.period_end) - epoch(periods.period_start) as period_seconds,
        epoch(least(periods.as_of_at, periods.period_end)) - epoch(periods.period_start) as elapsed_seconds,
    from periods
    inner join usage using (project_id)
),

final as (
    select
        project_id,
        project_name,
        plan,
        cast(period_start as timestamp) as period_start,
        cast(period_end as timestamp) as period_end,
        cast(as_of_at as timestamp) as as_of_at,
        cast(events_accepted as bigint) as events_accepted,
        cast(event_limit as bigint) as event_limit,
        cast(case when event_limit > 0 then events_accepted / event_limit end as double) as share_used,
        cast(greatest(0, ceil((epoch(period_end) - epoch(as_of_at)) / 86400.0)) as integer) as days_left,
        cast(
            case when elapsed_seconds <= 0 then events_accepted
                 else events_accepted * period_seconds / elapsed_seconds end
            as double
        ) as projected_events,
        coalesce(events_accepted > event_limit, false) as is_over_limit,
        coalesce(
            case when elapsed_seconds <= 0 then events_accepted
                 else events_accepted * period_seconds / elapsed_seconds end > event_limit,
            false
        ) as is_projected_over_limit,
    from measured
)

select * from final
