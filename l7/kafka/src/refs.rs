//! How a request names topics ([`TopicRef`]) and the collector that the
//! topics column of [`crate::api`]'s table fills.

use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

/// A topic as a request names it: by name, or (newer versions of Fetch and
/// others) by topic ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicRef {
    Name(StrBytes),
    Id(Uuid),
}

/// `ConfigResource.Type.TOPIC` (DescribeConfigs, AlterConfigs,
/// IncrementalAlterConfigs) and `ResourceType.TOPIC` (the ACL APIs): both 2.
const RESOURCE_TYPE_TOPIC: i8 = 2;
/// `ResourceType.ANY` in an ACL filter: matches topics too.
const ACL_RESOURCE_TYPE_ANY: i8 = 1;

/// Collects topic references in request order, for the topics column of
/// [`crate::api`]'s table.
#[derive(Default)]
pub(crate) struct Topics(pub(crate) Vec<TopicRef>);

impl Topics {
    /// Each item's topic name.
    pub fn names<'a, T: 'a>(
        &mut self,
        items: impl IntoIterator<Item = &'a T>,
        name: impl Fn(&'a T) -> &'a TopicName,
    ) {
        self.0
            .extend(items.into_iter().map(|x| TopicRef::Name(name(x).0.clone())));
    }

    /// Each item's topic ID.
    pub fn ids<'a, T: 'a>(
        &mut self,
        items: impl IntoIterator<Item = &'a T>,
        id: impl Fn(&T) -> Uuid,
    ) {
        self.0
            .extend(items.into_iter().map(|x| TopicRef::Id(id(x))));
    }

    /// Items whose schema has both a name and a topic ID, of which a given
    /// version carries one (Produce, Fetch: a name up to some version, the
    /// ID after) or, in a few messages, both (Metadata v10+, DeleteTopics
    /// v6). A field the version does not carry decodes as the empty name or
    /// the nil ID, so: the name when non-empty, the ID when non-nil — both
    /// if the peer sent both, so that policy sees each — and, when neither
    /// is set, the name as sent (empty, or absent for a nullable name): a
    /// topic no topic rule names, rather than nothing at all.
    pub fn names_or_ids<'a, T: 'a>(
        &mut self,
        items: impl IntoIterator<Item = &'a T>,
        name_and_id: impl Fn(&'a T) -> (Option<&'a TopicName>, Uuid),
    ) {
        for (name, id) in items.into_iter().map(name_and_id) {
            let named = name.filter(|n| !n.0.is_empty());
            if let Some(name) = named {
                self.0.push(TopicRef::Name(name.0.clone()));
            }
            if !id.is_nil() {
                self.0.push(TopicRef::Id(id));
            }
            if named.is_none() && id.is_nil() {
                self.0.push(TopicRef::Name(
                    name.map(|n| n.0.clone()).unwrap_or_default(),
                ));
            }
        }
    }

    /// A config or ACL resource, when its type is a topic.
    pub fn resource(&mut self, resource_type: i8, name: &StrBytes) {
        if resource_type == RESOURCE_TYPE_TOPIC {
            self.0.push(TopicRef::Name(name.clone()));
        }
    }

    /// An ACL filter naming a resource whose type covers topics: `TOPIC`,
    /// or `ANY`.
    pub fn acl_filter(&mut self, resource_type: i8, name: Option<&StrBytes>) {
        if let Some(name) = name {
            if resource_type == ACL_RESOURCE_TYPE_ANY {
                self.0.push(TopicRef::Name(name.clone()));
            } else {
                self.resource(resource_type, name);
            }
        }
    }
}
