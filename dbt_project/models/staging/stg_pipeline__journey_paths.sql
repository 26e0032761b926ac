with

source as (
    select * from {{ source('pipeline', 'journey_paths') }}
),

final as (
    select
        project_id,
        field,
        scope,
        cast(path_length as integer) as path_length,
        cast(path_topic_ids as integer[]) as path_topic_ids,
        cast(sessions as bigint) as sessions,
        cast(share as double) as share,
    from source
)

select * from final
