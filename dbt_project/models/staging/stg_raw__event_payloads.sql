-- Every field of a Trieve event as sent (raw.event_payloads), typed; the JSON stays in `payload` too, so a
-- field Trieve adds later is never lost. Fields a type does not have are null.
with

source as (
    select * from {{ source('raw', 'event_payloads') }}
),

typed as (
    select
        project_id,
        event_id,
        payload,
        payload ->> '$.event_type' as event_type,
        -- common to the event types
        payload ->> '$.event_name' as event_name,
        payload ->> '$.user_id' as sent_user_id,
        payload ->> '$.location' as location,
        try_cast(payload ->> '$.is_conversion' as boolean) as is_conversion,
        {{ json_or_null("payload -> '$.metadata'") }} as event_metadata,
        -- the request an event follows, and a request's own id (search, rag, recommendation)
        payload ->> '$.request.request_id' as followed_request_id,
        payload ->> '$.request.request_type' as followed_request_type,
        payload ->> '$.request_id' as sent_request_id,
        -- view, add_to_cart: item ids; purchase: items with revenue; filter_clicked: filter -> value
        {{ json_or_null("payload -> '$.items'") }} as items,
        -- click
        payload ->> '$.clicked_items.chunk_id' as clicked_chunk_id,
        cast(payload ->> '$.clicked_items.position' as integer) as clicked_position,
        -- search
        payload ->> '$.query' as query,
        payload ->> '$.search_type' as search_type,
        cast(payload ->> '$.latency' as double) as latency,
        cast(payload ->> '$.top_score' as double) as top_score,
        cast(payload ->> '$.tokens' as bigint) as tokens,
        {{ json_or_null("payload -> '$.results'") }} as results,
        {{ json_or_null("payload -> '$.request_params'") }} as request_params,
        cast(payload ->> '$.query_rating.rating' as integer) as query_rating,
        payload ->> '$.query_rating.note' as query_rating_note,
        {{ json_or_null("payload -> '$.query_rating.metadata'") }} as query_rating_metadata,
        -- rag
        payload ->> '$.user_message' as user_message,
        payload ->> '$.llm_response' as llm_response,
        payload ->> '$.rag_type' as rag_type,
        cast(payload ->> '$.hallucination_score' as double) as hallucination_score,
        from_json(payload -> '$.detected_hallucinations', '["VARCHAR"]') as detected_hallucinations,
        payload ->> '$.search_id' as search_id,
        payload ->> '$.topic_id' as chat_topic_id,
        -- recommendation
        payload ->> '$.recommendation_type' as recommendation_type,
        from_json(payload -> '$.positive_ids', '["VARCHAR"]') as positive_ids,
        from_json(payload -> '$.negative_ids', '["VARCHAR"]') as negative_ids,
        from_json(payload -> '$.positive_tracking_ids', '["VARCHAR"]') as positive_tracking_ids,
        from_json(payload -> '$.negative_tracking_ids', '["VARCHAR"]') as negative_tracking_ids,
    from source
),

final as (
    select
        typed.*,
        case when event_type in ('search', 'rag', 'recommendation') then event_id end as request_id,
        case when event_type in ('view', 'add_to_cart') then from_json(items, '["VARCHAR"]') end as item_ids,
        case
            when event_type = 'purchase'
                then from_json(items, '[{"tracking_id": "VARCHAR", "revenue": "DOUBLE"}]')
        end as purchase_items,
        case when event_type = 'filter_clicked' then from_json(items, '"MAP(VARCHAR, VARCHAR)"') end as filters,
        case
            when event_type = 'purchase'
                then coalesce(
                    list_sum(list_transform(
                        from_json(items, '[{"tracking_id": "VARCHAR", "revenue": "DOUBLE"}]'),
                        lambda item: item.revenue
                    )),
                    0
                )
        end as revenue,
        case when json_type(items) = 'ARRAY' then cast(json_array_length(items) as integer) end as item_count,
        case when json_type(results) = 'ARRAY' then cast(json_array_length(results) as integer) end as result_count,
    from typed
)

select * from final
