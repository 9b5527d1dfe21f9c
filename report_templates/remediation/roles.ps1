function Remove-SaRoleSchedule {
    # adminRemove through the schedule request APIs: an eligibility, a permanent or time-bound
    # assignment, or a PIM activation all end this way.
    # https://learn.microsoft.com/graph/api/rbacapplication-post-roleassignmentschedulerequests
    param([string]$UserId, [object]$Schedule)
    $body = @{
        action           = 'adminRemove'
        principalId      = $UserId
        roleDefinitionId = $Schedule.RoleDefinitionId
        directoryScopeId = $Schedule.DirectoryScopeId
        justification    = 'syncaudit: the match of the on-premises account'
    }
    if ($Schedule.Kind -eq 'eligibility') {
        New-MgRoleManagementDirectoryRoleEligibilityScheduleRequest -BodyParameter $body -Confirm:$false | Out-Null
    }
    else {
        New-MgRoleManagementDirectoryRoleAssignmentScheduleRequest -BodyParameter $body -Confirm:$false | Out-Null
    }
}

function Restore-SaRoleSchedule {
    # adminAssign with the original schedule: the same end date (or none) and the original start
    # when that is still ahead. A PIM activation is not re-created as an assignment (that would
    # turn a time-limited activation into a standing one); the restored eligibility lets the
    # user activate again. Returns why it did not restore, or ''.
    param([string]$UserId, [object]$Schedule)
    if ($Schedule.AssignmentType -eq 'Activated') { return 'a PIM activation is not restored: the user activates the role again from the eligibility' }
    $now = (Get-Date).ToUniversalTime()
    $expiration = @{ type = 'noExpiration' }
    $end = ConvertTo-SaUtc -Value $Schedule.End
    if ($end) {
        if ($end -le $now) { return ('not restored: its schedule ended at {0}' -f $end.ToString('o')) }
        $expiration = @{ type = 'afterDateTime'; endDateTime = $end.ToString('o') }
    }
    $start = ConvertTo-SaUtc -Value $Schedule.Start
    if ((-not $start) -or ($start -lt $now)) { $start = $now }
    $body = @{
        action           = 'adminAssign'
        principalId      = $UserId
        roleDefinitionId = $Schedule.RoleDefinitionId
        directoryScopeId = $Schedule.DirectoryScopeId
        justification    = 'syncaudit: restore after the match'
        scheduleInfo     = @{ startDateTime = $start.ToString('o'); expiration = $expiration }
    }
    if ($Schedule.Kind -eq 'eligibility') {
        New-MgRoleManagementDirectoryRoleEligibilityScheduleRequest -BodyParameter $body -Confirm:$false | Out-Null
    }
    else {
        New-MgRoleManagementDirectoryRoleAssignmentScheduleRequest -BodyParameter $body -Confirm:$false | Out-Null
    }
    return ''
}
