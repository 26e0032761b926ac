with

source as (
    select * from {{ source('pipeline', 'topic_lineage') }}
),

final as (
    select
        run_id,
        project_id,
        field,
        cast(topic_id as integer) as topic_id,
        change,
        cast(related_topic_ids as varchar) as related_topic_ids,
        created_at,
    from source
)

select * from final
