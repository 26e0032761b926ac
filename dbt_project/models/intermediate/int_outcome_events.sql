-- What happened after a search or a message, from both contracts, in one shape.
--   Trieve: view, click, add_to_cart and purchase events; `request.request_id` names the search (or RAG or
--     recommendation request) they follow; is_conversion as sent, else true for a purchase; revenue is the
--     sum of a purchase's items[].revenue.
--   Turret /track (the convention, docs/marts.md): events named view, click, add_to_cart, purchase or
--     conversion (any case), credited to the latest message before them in the same session;
--     metadata.is_conversion (true/false) as sent, else true for purchase and conversion; metadata.revenue
--     when it is a number.
with

events as (
    select * from {{ ref('stg_raw__events') }}
),

payloads as (
    select * from {{ ref('stg_raw__event_payloads') }}
),

trieve as (
    select
        events.project_id,
        events.event_id,
        events.contract,
        events.session_id,
        events.occurred_at,
        events.event_type as outcome_type,
        payloads.followed_request_id,
        coalesce(payloads.is_conversion, events.event_type = 'purchase') as is_conversion,
        payloads.revenue,
    from events
    inner join payloads
        on events.project_id = payloads.project_id
        and events.event_id = payloads.event_id
    where events.contract = 'trieve'
        and events.event_type in ('view', 'click', 'add_to_cart', 'purchase')
),

turret as (
    select
        project_id,
        event_id,
        contract,
        session_id,
        occurred_at,
        lower(event_name) as outcome_type,
        cast(null as varchar) as followed_request_id,
        coalesce(
            case json_type(metadata -> '$.is_conversion')
                when 'BOOLEAN' then cast(metadata ->> '$.is_conversion' as boolean)
            end,
            lower(event_name) in ('purchase', 'conversion')
        ) as is_conversion,
        case
            when json_type(metadata -> '$.revenue') in ('UBIGINT', 'BIGINT', 'DOUBLE')
                then cast(metadata ->> '$.revenue' as double)
        end as revenue,
    from events
    where contract = 'turret'
        and lower(event_name) in ('view', 'click', 'add_to_cart', 'purchase', 'conversion')
),

final as (
    select * from trieve
    union all by name
    select * from turret
)

select * from final
