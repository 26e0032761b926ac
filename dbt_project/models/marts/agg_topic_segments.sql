-- Topic x enum field x value. share = the value's part of the topic's events that have that enum field.
with

events as (
    select project_id, event_id, field, topic_id from {{ ref('fct_events') }}
),

enums as (
    select project_id, event_id, field as enum_field, value as enum_value from {{ ref('fct_event_enums') }}
),

counted as (
    select
        events.project_id,
        events.field,
        events.topic_id,
        enums.enum_field,
        enums.enum_value,
        count(*) as events,
    from events
    inner join enums
        on events.project_id = enums.project_id
        and events.event_id = enums.event_id
    group by all
),

final as (
    select
        project_id,
        field,
        cast(topic_id as integer) as topic_id,
        enum_field,
        enum_value,
        cast(events as bigint) as events,
        cast(events / sum(events) over (partition by project_id, field, topic_id, enum_field) as double)
            as share,
    from counted
)

select * from final
