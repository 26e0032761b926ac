{#- One enum value as fct_events.enum_values holds it: '<field>=<value>', with %, | and = in either written %25,
    %7C and %3D, so '|<field>=<value>|' only ever matches a whole value (turret.ui.filters.enum_value_key
    writes the same in Python). -#}
{% macro enum_value_key(field, value) -%}
    {{ _enum_escape(field) }} || '=' || {{ _enum_escape(value) }}
{%- endmacro %}

{% macro _enum_escape(expression) -%}
    replace(replace(replace({{ expression }}, '%', '%25'), '|', '%7C'), '=', '%3D')
{%- endmacro %}
