-- Topic x number field: distribution of the number's values over the topic's events.
with

events as (
    select project_id, event_id, field, topic_id from {{ ref('fct_events') }}
),

numbers as (
    select project_id, event_id, field as number_field, value from {{ ref('fct_event_numbers') }}
),

final as (
    select
        events.project_id,
        events.field,
        cast(events.topic_id as integer) as topic_id,
        numbers.number_field,
        cast(count(*) as bigint) as values_count,
        cast(avg(numbers.value) as double) as avg_value,
        cast(min(numbers.value) as double) as min_value,
        cast(max(numbers.value) as double) as max_value,
        cast(quantile_cont(numbers.value, 0.5) as double) as p50_value,
        cast(quantile_cont(numbers.value, 0.9) as double) as p90_value,
    from events
    inner join numbers
        on events.project_id = numbers.project_id
        and events.event_id = numbers.event_id
    group by all
)

select * from final
