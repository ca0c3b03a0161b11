use chat_model::group::Role;

use crate::{daos, user::new_user};

#[tokio::test]
async fn groups_and_their_members_change_in_one_place() {
    let (_ts, _stores, daos) = daos().await;
    let (g, u) = (&daos.group, &daos.user);
    let mut ids = Vec::new();
    for name in ["owner_1", "admin_2", "member_3", "later_4"] {
        ids.push(u.insert(&new_user(name)).await.unwrap());
    }
    let (owner, admin, member, later) = (ids[0], ids[1], ids[2], ids[3]);
    // the owner listed among the members is not added twice
    let id = g.create("Friends", owner, &[owner, admin, member], 0).await.unwrap();
    let group = g.find(id).await.unwrap().unwrap();
    assert_eq!((group.name.as_str(), group.owner), ("Friends", owner));
    let members = g.members(id).await.unwrap();
    assert_eq!(
        members.iter().map(|m| (m.user_id, m.role())).collect::<Vec<_>>(),
        vec![(owner, Role::Owner), (admin, Role::Member), (member, Role::Member)]
    );
    assert!(g.set_admin(id, admin, true).await.unwrap());
    assert!(!g.set_admin(id, owner, false).await.unwrap(), "the owner's role changes only with the ownership");
    assert_eq!(g.member(id, admin).await.unwrap().unwrap().role(), Role::Admin);
    // added later, from a later seq; one already in is left as it is
    assert_eq!(g.add_members(id, &[later, member], 7).await.unwrap(), 1);
    assert_eq!(g.member(id, later).await.unwrap().unwrap().join_seq, 7);
    assert_eq!(g.member(id, member).await.unwrap().unwrap().join_seq, 0);
    assert_eq!(g.groups_of(later).await.unwrap().len(), 1);
    assert!(g.remove_member(id, later).await.unwrap());
    assert!(!g.remove_member(id, later).await.unwrap());
    assert!(g.groups_of(later).await.unwrap().is_empty());
    g.rename(id, "Old friends").await.unwrap();
    // the ownership handed over: the previous owner becomes an admin
    g.set_owner(id, member).await.unwrap();
    assert_eq!(g.find(id).await.unwrap().unwrap().owner, member);
    assert_eq!(g.member(id, member).await.unwrap().unwrap().role(), Role::Owner);
    assert_eq!(g.member(id, owner).await.unwrap().unwrap().role(), Role::Admin);
    let other = g.create("Other", admin, &[], 0).await.unwrap();
    assert_eq!(g.groups_of(admin).await.unwrap().iter().map(|g| g.id).collect::<Vec<_>>(), vec![other, id]);
    g.dissolve(id).await.unwrap();
    assert!(g.find(id).await.unwrap().is_none());
    assert!(g.members(id).await.unwrap().is_empty());
    assert_eq!(g.groups_of(admin).await.unwrap().len(), 1);
}
