-- Every (project, field, from topic) distributes exactly all of its probability over next topics.
select project_id, field, from_topic_id, sum(probability) as total
from {{ ref('agg_topic_transitions') }}
group by all
having abs(sum(probability) - 1) > 1e-9
