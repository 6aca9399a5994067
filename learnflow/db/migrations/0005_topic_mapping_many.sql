-- MIT Learn maps an offeror's topic name to every topic that lists it (LearningResourceTopicMapping
-- has one row per topic): the key takes the topic, so one name can map to several.
ALTER TABLE topic_mapping DROP CONSTRAINT topic_mapping_pkey;
ALTER TABLE topic_mapping ADD PRIMARY KEY (offeror, source_name, topic);
