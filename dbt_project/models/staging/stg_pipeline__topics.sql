with

source as (
    select * from {{ source('pipeline', 'topics') }}
),

final as (
    select
        project_id,
        field,
        cast(topic_id as integer) as topic_id,
        label as topic_label,
        description as topic_description,
        cast(keywords as varchar) as keywords,
        label_source,
        cast(theme_id as integer) as theme_id,
        size as topic_size,
        status as topic_status,
        coalesce(kind, 'subject') as topic_kind,
        created_run_id,
        updated_run_id,
    from source
)

select * from final
