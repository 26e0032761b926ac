{#- Fails for rows where `columns` are not in non-decreasing order (c1 <= c2 <= ...), allowing a relative
    rounding `tolerance` (an average of equal doubles may exceed them by an ulp); a pair with a null passes. -#}
{% test values_in_order(model, columns, tolerance=1e-9) %}
select *
from {{ model }}
where false
{%- for i in range(columns | length - 1) %}
    or {{ columns[i] }} > {{ columns[i + 1] }} + {{ tolerance }} * greatest(1, abs({{ columns[i + 1] }}))
{%- endfor %}
{% endtest %}
