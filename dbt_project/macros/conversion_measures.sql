{#- The conversion measures over rows of int_topic_messages_outcomes_summed (one per message and field),
    shared by agg_topic_conversions_daily and agg_topic_conversions_segments so the two cannot drift. -#}
{% macro conversion_measures() -%}
        cast(count(*) as bigint) as messages,
        cast(sum(views) as bigint) as views,
        cast(sum(clicks) as bigint) as clicks,
        cast(count(*) filter (where clicks > 0) as bigint) as messages_clicked,
        cast(count(*) filter (where clicks > 0) / count(*) as double) as click_through_rate,
        cast(sum(add_to_carts) as bigint) as add_to_carts,
        cast(sum(purchases) as bigint) as purchases,
        cast(sum(conversions) as bigint) as conversions,
        cast(count(*) filter (where conversions > 0) as bigint) as messages_converted,
        cast(count(*) filter (where conversions > 0) / count(*) as double) as conversion_rate,
        cast(sum(revenue) as double) as revenue,
        cast(median(seconds_to_first_conversion) as double) as median_seconds_to_conversion,
{%- endmacro %}
