{{ topic_trends('hour') }}
