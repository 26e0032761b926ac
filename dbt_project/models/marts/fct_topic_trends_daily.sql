{{ topic_trends('day') }}
