{# A JSON value, with JSON null (and a missing key) as SQL null: `x -> '$.k'` gives the JSON value null. #}
{% macro json_or_null(expression) -%}
    case when json_type({{ expression }}) = 'NULL' then null else {{ expression }} end
{%- endmacro %}
