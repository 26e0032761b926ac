with

source as (
    select * from {{ source('raw_quarantine', 'quarantine') }}
),

final as (
    select
        segment,
        line_no,
        reason,
        case
            when reason like 'data check failed:%' then 'data_check'
            when reason like 'out of bounds:%' then 'out_of_bounds'
            else 'malformed'
        end as stage,
        -- A malformed line is not JSON at all: no project, no event.
        try(json_extract_string(line, '$.project_id')) as project_id,
        try(json_extract_string(line, '$.event_id')) as event_id,
        quarantined_at,
    from source
)

select * from final
