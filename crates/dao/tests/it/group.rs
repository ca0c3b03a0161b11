use chat_dao::group::{Changed, Decision, GroupWrite};
use chat_model::group::{PENDING_JOIN, Role};

use crate::{daos, user::new_user};

/// `user`'s row in the group, as it is now.
async fn row(g: &chat_dao::GroupDao, id: u64, user: u64) -> Option<chat_model::group::GroupMember> {
    g.load(id).await.unwrap()?.1.into_iter().find(|m| m.user_id == user)
}

fn writes(writes: Vec<GroupWrite>, events: &[&str]) -> Decision {
    Decision { writes, events: events.iter().map(|e| e.to_string()).collect() }
}

#[tokio::test]
async fn a_change_and_its_events_are_written_together_under_the_groups_lock() {
    let (_ts, _stores, daos) = daos().await;
    let (g, u) = (&daos.group, &daos.user);
    let mut ids = Vec::new();
    for name in ["owner_1", "admin_2", "member_3", "later_4"] {
        ids.push(u.insert(&new_user(name)).await.unwrap());
    }
    let (owner, admin, member, later) = (ids[0], ids[1], ids[2], ids[3]);
    // the owner listed among the members is not added twice; everyone waits for the event
    let (id, created) = g.create("Friends", owner, &[owner, admin, member], r#"{"created":1}"#).await.unwrap();
    let (group, members) = g.load(id).await.unwrap().unwrap();
    assert_eq!((group.name.as_str(), group.owner), ("Friends", owner));
    assert_eq!(
        members.iter().map(|m| (m.user_id, m.role(), m.join_seq)).collect::<Vec<_>>(),
        vec![
            (owner, Role::Owner, PENDING_JOIN),
            (admin, Role::Member, PENDING_JOIN),
            (member, Role::Member, PENDING_JOIN)
        ]
    );
    let pending = g.pending_events(Some(id), 10).await.unwrap();
    assert_eq!((pending.len(), pending[0].id, pending[0].actor), (1, created, owner));
    g.mark_recorded(created, id, 1, &[owner, admin, member]).await.unwrap();
    assert!(g.pending_events(None, 10).await.unwrap().is_empty());
    assert!(g.load(id).await.unwrap().unwrap().1.iter().all(|m| m.join_seq == 1 && m.is_active()));

    // the rules see the group as it is; what they refuse writes nothing
    let refused = g.change(id, admin, |_, _| Err::<Decision, _>("no")).await.unwrap();
    assert!(matches!(refused, Changed::Refused("no")));
    let done = g
        .change(id, owner, move |group, members| {
            assert_eq!((group.owner, members.len()), (owner, 3));
            Ok::<_, ()>(writes(
                vec![GroupWrite::SetRole(admin, Role::Admin), GroupWrite::Add(vec![later, member])],
                &["a", "b"],
            ))
        })
        .await
        .unwrap();
    let Changed::Done(events) = done else { panic!("{done:?}") };
    assert_eq!(events.len(), 2);
    assert_eq!(row(g, id, admin).await.unwrap().role(), Role::Admin);
    assert_eq!(row(g, id, later).await.unwrap().join_seq, PENDING_JOIN, "pending until recorded");
    assert_eq!(row(g, id, member).await.unwrap().join_seq, 1, "one already in is left as it is");
    g.mark_recorded(events[1], id, 7, &[later]).await.unwrap();
    assert_eq!(row(g, id, later).await.unwrap().join_seq, 7);
    assert_eq!(g.pending_events(None, 10).await.unwrap().iter().map(|e| e.id).collect::<Vec<_>>(), [events[0]]);
    assert_eq!(g.groups_of(later).await.unwrap().len(), 1);
    let counts = g.member_counts(&[id]).await.unwrap();
    assert_eq!(counts, [(id, 4)]);

    // the ownership handed over: the previous owner becomes an admin
    let handed = g
        .change(id, owner, move |_, _| {
            Ok::<_, ()>(writes(
                vec![GroupWrite::SetOwner(member), GroupWrite::Remove(later), GroupWrite::Rename("Old friends".into())],
                &[],
            ))
        })
        .await
        .unwrap();
    assert!(matches!(handed, Changed::Done(_)));
    let (group, _) = g.load(id).await.unwrap().unwrap();
    assert_eq!((group.owner, group.name.as_str()), (member, "Old friends"));
    assert_eq!(row(g, id, member).await.unwrap().role(), Role::Owner);
    assert_eq!(row(g, id, owner).await.unwrap().role(), Role::Admin);
    assert!(g.groups_of(later).await.unwrap().is_empty());
    // handing over to someone who is not a member rolls the whole change back
    let bad = g
        .change(id, member, move |_, _| {
            Ok::<_, ()>(writes(vec![GroupWrite::Rename("x".into()), GroupWrite::SetOwner(later)], &["e"]))
        })
        .await;
    assert!(bad.is_err());
    assert_eq!(g.load(id).await.unwrap().unwrap().0.name, "Old friends");

    let (other, _) = g.create("Other", admin, &[], "{}").await.unwrap();
    assert_eq!(g.groups_of(admin).await.unwrap().iter().map(|(g, _)| g.id).collect::<Vec<_>>(), vec![other, id]);
    g.change(id, member, |_, _| Ok::<_, ()>(writes(vec![GroupWrite::Dissolve], &["gone"]))).await.unwrap();
    assert!(g.load(id).await.unwrap().is_none());
    assert!(g.member_counts(&[id]).await.unwrap().is_empty(), "its members removed");
    assert!(matches!(g.change(id, member, |_, _| Ok::<_, ()>(Decision::default())).await.unwrap(), Changed::NoGroup));
    assert_eq!(g.groups_of(admin).await.unwrap().len(), 1);
}
