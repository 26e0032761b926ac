-- One row per message and text field with the outcomes credited to it, summed: the unit both conversion
-- marts aggregate (per topic and day, and per enum segment).
with

messages as (
    select * from {{ ref('int_topic_messages') }}
),

attributed as (
    select * from {{ ref('int_outcome_events_attributed') }}
),

final as (
    select
        messages.project_id,
        messages.event_id,
        messages.field,
        messages.topic_id,
        messages.message_date,
        -- count(*) filter, not count_if: a message with no outcome has one row of nulls, which counts 0.
        count(*) filter (where attributed.outcome_type = 'view') as views,
        count(*) filter (where attributed.outcome_type = 'click') as clicks,
        count(*) filter (where attributed.outcome_type = 'add_to_cart') as add_to_carts,
        count(*) filter (where attributed.outcome_type = 'purchase') as purchases,
        count(*) filter (where attributed.is_conversion) as conversions,
        cast(coalesce(sum(attributed.revenue), 0) as double) as revenue,
        min(case when attributed.is_conversion then attributed.seconds_after_message end)
            as seconds_to_first_conversion,
    from messages
    left join attributed
        on messages.project_id = attributed.project_id
        and messages.event_id = attributed.message_event_id
        and messages.field = attributed.field
    group by all
)

select * from final
